"""xiaomanlv_mapping: a mapping drive becomes a prior map; the map server; map quality tools.

record (bag.py, ros/record.py, nodes/recorder.py) -> build (slam.py, cloud.py, grid.py,
routes.py, build.py) -> maps/<site>/ (mapfiles.py) -> map_server node; evaluate.py measures a
built map against the world's true geometry. Data model: model.py. Guide: docs/mapping.md.
"""
