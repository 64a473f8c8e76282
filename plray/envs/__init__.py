"""Goal-conditioned environments with their exact dynamics, reward families and goal sets."""

import gymnasium as gym

from plray.envs.fourrooms import GOAL_FAMILIES, VARIANTS, FourRooms, FourRoomsGoalEnv, GoalSet, Task

if "plray/FourRooms-v0" not in gym.registry:
    gym.register(id="plray/FourRooms-v0", entry_point="plray.envs.fourrooms:FourRoomsGoalEnv")

__all__ = ["GOAL_FAMILIES", "VARIANTS", "FourRooms", "FourRoomsGoalEnv", "GoalSet", "Task"]
