"""xiaomanlv_mapping: a mapping drive becomes a prior map; the map server; map quality tools.

record (bag/: writer and reader, nodes/recorder.py) -> build (slam.py, cloud.py, grid.py,
routes.py, build.py) -> maps/<site>/ (mapfiles/: one module per file format) -> map_server
node. The nodes' configs: config.py. Data model: model.py. Guide: docs/mapping.md.
"""
