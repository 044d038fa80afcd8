"""World models for driving in dense traffic (Henaff, Canziani & LeCun, ICLR 2019):
an IDM/MOBIL highway simulator (``genoise/HighwayTraffic-v0``), the traffic-camera data
set, forward models, differentiable driving costs and planners.

Importing this package registers ``genoise/HighwayTraffic-v0`` with gymnasium.
"""

from __future__ import annotations

import gymnasium as gym

from genoise.world.costs import CostConfig, driving_cost, lane_cost, offroad_cost, proximity_cost
from genoise.world.highway_env import HighwayTrafficEnv
from genoise.world.raster import RasterSpec, ego_raster, rasterize_cars
from genoise.world.traffic import RoadConfig, idm_acceleration, simulate, spawn_traffic, traffic_step

ENV_ID = "genoise/HighwayTraffic-v0"

if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="genoise.world.highway_env:HighwayTrafficEnv")

__all__ = [
    "ENV_ID",
    "CostConfig",
    "HighwayTrafficEnv",
    "RasterSpec",
    "RoadConfig",
    "driving_cost",
    "ego_raster",
    "idm_acceleration",
    "lane_cost",
    "offroad_cost",
    "proximity_cost",
    "rasterize_cars",
    "simulate",
    "spawn_traffic",
    "traffic_step",
]
