"""Sensor models of the headless simulator: each turns the scene and the robot's true
state into the readings a real sensor would give, with the noise, rates and ranges that
models/xiaomanlv/model.sdf declares.
"""
