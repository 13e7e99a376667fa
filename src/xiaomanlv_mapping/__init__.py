"""xiaomanlv_mapping: mapping drive -> prior map, the map server, map quality tools.

Empty until the mapping issue lands; see BRIEF.md for what goes here.
"""
