# The two commands a newcomer needs: `make demo` and `make test`. Each sets itself up.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
ENV := source tools/env.sh
# vendor/ holds interfaces no reachable registry has (tf2_msgs); colcon never looks inside the
# root package, so it is a base path of its own, and tools/vendored_skip.sh skips each one this
# machine's ROS 2 already provides.
COLCON := colcon --log-base build/colcon-log build --symlink-install --base-paths . vendor \
	--build-base build --install-base install $$(bash tools/vendored_skip.sh) \
	--cmake-args -DPython3_EXECUTABLE=$(CURDIR)/.venv/bin/python -DBUILD_TESTING=ON

.PHONY: setup venv build test demo lint typecheck pytest colcon-test lock clean

## Everything a newcomer needs, idempotent: the environment, then the colcon build.
setup: build

venv:
	@bash tools/setup.sh

build: venv
	@$(ENV) && $(COLCON) && python -m xiaomanlv_sim.precompile

lint: venv
	@$(ENV) && ruff check . && ruff format --check src tests bench launch tools setup.py && \
		lint-imports --no-cache

typecheck: venv
	@$(ENV) && mypy

pytest: build
	@$(ENV) && pytest $(PYTEST_ARGS)

## The test command: lint, types, then every test.
test: build lint typecheck pytest

## The main job.
demo: build
	@$(ENV) && xiaomanlv demo

colcon-test: build
	@$(ENV) && colcon --log-base build/colcon-log test --base-paths . vendor --build-base build \
		--install-base install --event-handlers console_direct- && \
		colcon test-result --test-result-base build --verbose

lock:
	@bash tools/lock.sh

clean:
	rm -rf build install log .mypy_cache .pytest_cache .ruff_cache
