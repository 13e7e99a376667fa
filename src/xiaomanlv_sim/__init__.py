"""xiaomanlv_sim: the headless SDF simulator, scenarios and campaigns.

Empty until the simulator issue lands; see BRIEF.md for what goes here.
"""
