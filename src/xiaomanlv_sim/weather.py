"""Rain and fog, and what they do to the ranging sensors (lidar, ultrasonic).

A scenario lists weather windows (`scenario.WeatherSpec`); `weather_at` turns them into the
`WeatherState` at a time. `apply_to_ranges` degrades a batch of true ranges the same way for
every ranging sensor, following the structure of the physically based lidar weather models of
Goodin et al., "Predicting the Influence of Rain on LIDAR in ADAS", Electronics 8(1):89, 2019,
and Hahner et al., "Fog Simulation on Real LiDAR Point Clouds for 3D Object Detection in Adverse
Weather", ICCV 2021:

* Attenuation (Beer-Lambert, two-way): received power of a target at range z falls as
  ``exp(-2 alpha z) / z**2``. A return is detected while that stays above the power a target at
  the sensor's clear-weather `range_max` gives, i.e. while ``z**2 exp(2 alpha z) <= range_max**2``:
  the usable range shrinks as the extinction coefficient alpha grows. Intensities are scaled by
  ``exp(-2 alpha z)``.
* Rain: alpha follows a power law in the rain rate R [mm/h], ``alpha = a R**b`` (the form
  reported by Rasshofer et al., "Influences of weather phenomena on automotive laser radar
  systems", Adv. Radio Sci. 9, 2011); intensity 1 is R = 50 mm/h (violent rain), calibrated so
  a 100 m lidar then sees about 55 m. Drops also cause random dropouts, range noise growing with
  range, and spurious returns from drops close to the sensor (Goodin et al. 2019).
* Fog: alpha from the meteorological visibility V by Koschmieder's law, ``alpha = 3.912 / V``
  (near-infrared extinction is close to visible for V < 500 m, Kim et al., SPIE 4214, 2001);
  intensity 0 -> V = 1000 m, 1 -> V = 30 m (dense fog), log-interpolated. Back-scatter from the
  fog gives spurious returns within a few metres (Hahner et al. 2021).
* Ultrasound is hardly attenuated by fog or rain at our ranges; rain adds drop impacts on the
  membrane (spurious short echoes) and a little noise. That is `UltrasonicWeather`.

All coefficients live in the frozen `WeatherModel` / `UltrasonicWeather` configs below.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from xiaomanlv_sim.scenario import WeatherSpec


@dataclass(frozen=True)
class WeatherState:
    rain: float = 0.0  # 0..1, 1 = the heaviest rain the model covers (50 mm/h)
    fog: float = 0.0  # 0..1, 1 = dense fog (30 m visibility)

    @property
    def clear(self) -> bool:
        return self.rain <= 0.0 and self.fog <= 0.0


CLEAR = WeatherState()


def weather_at(specs: Iterable[WeatherSpec], t: float) -> WeatherState:
    """The weather at time `t` [s]: per kind, the strongest window with start <= t < end."""
    rain = fog = 0.0
    for spec in specs:
        if spec.start <= t < spec.end:
            level = min(1.0, max(0.0, spec.intensity))
            if spec.kind == "rain":
                rain = max(rain, level)
            elif spec.kind == "fog":
                fog = max(fog, level)
    return WeatherState(rain=rain, fog=fog)


@dataclass(frozen=True)
class WeatherModel:
    """Coefficients of the lidar weather model (see the module docstring)."""

    rain_rate_full: float = 50.0  # [mm/h] rain rate at intensity 1
    rain_alpha_a: float = 9.0e-4  # [1/m] alpha = a * R**b, R in mm/h
    rain_alpha_b: float = 0.63  # power-law exponent
    rain_dropout: float = 0.05  # share of returns lost at intensity 1
    rain_range_noise: float = 0.002  # [m/m] extra range stddev per metre of range at intensity 1
    rain_near_rate: float = 0.01  # share of rays returning from a drop at intensity 1
    rain_near_max: float = 3.0  # [m] drop returns are uniform in [range_min, this]
    fog_visibility_clear: float = 1000.0  # [m] visibility at fog intensity 0+
    fog_visibility_dense: float = 30.0  # [m] visibility at fog intensity 1
    fog_near_rate: float = 0.03  # share of rays returning from fog back-scatter at intensity 1
    fog_near_scale: float = 1.5  # [m] back-scatter ranges are range_min + exponential(scale)
    clutter_intensity: float = 0.05  # reflectivity-like intensity factor of drop/fog returns

    def extinction(self, state: WeatherState) -> float:
        """Extinction coefficient alpha [1/m] of rain plus fog."""
        alpha = 0.0
        if state.rain > 0:
            rate = self.rain_rate_full * state.rain
            alpha += self.rain_alpha_a * rate**self.rain_alpha_b
        if state.fog > 0:
            log_v = (1.0 - state.fog) * math.log(self.fog_visibility_clear) + state.fog * math.log(
                self.fog_visibility_dense
            )
            alpha += 3.912 / math.exp(log_v)
        return alpha

    def max_range(self, state: WeatherState, range_max: float) -> float:
        """Usable range [m]: the z where ``z**2 exp(2 alpha z) = range_max**2`` (bisection)."""
        alpha = self.extinction(state)
        if alpha <= 0:
            return range_max
        lo, hi = 0.0, range_max
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if mid * mid * math.exp(2 * alpha * mid) <= range_max * range_max:
                lo = mid
            else:
                hi = mid
        return lo


@dataclass(frozen=True)
class RangeEffects:
    """What the weather did to a batch of ranges."""

    distance: NDArray[np.float32]  # (N,) [m] inf where the return was lost
    intensity_factor: NDArray[np.float32]  # (N,) multiply reflectivity-based intensity by this
    extra_stddev: NDArray[np.float32]  # (N,) [m] additional gaussian range noise
    clutter: NDArray[np.bool_]  # (N,) returns from drops or fog, not from a surface


DEFAULT_MODEL = WeatherModel()


def apply_to_ranges(
    distance: NDArray[np.float32],
    state: WeatherState,
    rng: np.random.Generator,
    *,
    range_min: float,
    range_max: float,
    model: WeatherModel = DEFAULT_MODEL,
) -> RangeEffects:
    """Degrade true ranges (inf = no hit) by rain and fog; deterministic given `rng`.

    Draws random numbers only when the weather is not clear. Returns new arrays.
    """
    n = len(distance)
    if state.clear:
        return RangeEffects(
            distance,
            np.ones(n, dtype=np.float32),
            np.zeros(n, dtype=np.float32),
            np.zeros(n, dtype=bool),
        )
    alpha = model.extinction(state)
    d = distance.astype(np.float32, copy=True)
    hit = np.isfinite(d)
    with np.errstate(over="ignore", invalid="ignore"):
        atten = np.exp(-2.0 * alpha * np.where(hit, d, 0.0)).astype(np.float32)
        lost = hit & (d * d > range_max * range_max * atten)
    u = rng.random((3, n))
    lost |= hit & (u[0] < model.rain_dropout * state.rain)
    d[lost] = np.inf
    extra = (model.rain_range_noise * state.rain * np.where(np.isfinite(d), d, 0.0)).astype(
        np.float32
    )
    # Spurious near returns: drops (uniform) and fog back-scatter (exponential from range_min).
    rain_near = u[1] < model.rain_near_rate * state.rain
    fog_near = u[2] < model.fog_near_rate * state.fog
    clutter = np.zeros(n, dtype=bool)
    if rain_near.any():
        k = int(rain_near.sum())
        r = rng.uniform(range_min, max(range_min, model.rain_near_max), k).astype(np.float32)
        idx = np.nonzero(rain_near)[0]
        closer = r < d[idx]
        d[idx[closer]] = r[closer]
        clutter[idx[closer]] = True
    if fog_near.any():
        k = int(fog_near.sum())
        r = (range_min + rng.exponential(model.fog_near_scale, k)).astype(np.float32)
        idx = np.nonzero(fog_near)[0]
        closer = r < d[idx]
        d[idx[closer]] = r[closer]
        clutter[idx[closer]] = True
    atten = np.where(clutter, np.float32(model.clutter_intensity), atten).astype(np.float32)
    extra[clutter] = 0.0
    return RangeEffects(d, atten, extra, clutter)


@dataclass(frozen=True)
class UltrasonicWeather:
    """Rain on an ultrasonic ranger: drop impacts give false short echoes, and some noise."""

    rain_false_echo: float = 0.1  # chance per reading of a false echo at intensity 1
    rain_false_echo_max: float = 0.6  # [m] false echoes are uniform in [range_min, this]
    rain_noise: float = 0.01  # [m] extra range stddev at intensity 1


DEFAULT_ULTRASONIC_WEATHER = UltrasonicWeather()
