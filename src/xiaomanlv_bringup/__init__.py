"""xiaomanlv_bringup: the top of the house, the one package that may import all the others.

The graph declaration and the process supervisor behind ``xiaomanlv bringup`` and the launch
files, the ``xiaomanlv`` command line, the demo, the integration-test harness and fuzzer, and
what needs the simulator and the stack together: recording a mapping drive in the simulator and
evaluating a map against the simulator's truth.
"""
