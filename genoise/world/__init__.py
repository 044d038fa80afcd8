"""World models for driving in dense traffic (Henaff, Canziani & LeCun, ICLR 2019):
an IDM/MOBIL highway simulator (``genoise/HighwayTraffic-v0``), the traffic-camera data
set, forward models, differentiable driving costs, planners and policies.

Importing this package registers ``genoise/HighwayTraffic-v0`` with gymnasium.
"""

from __future__ import annotations

import gymnasium as gym

from genoise.world.costs import CostConfig, driving_cost, lane_cost, offroad_cost, proximity_cost
from genoise.world.dataset import TrafficDataset, collect_traffic
from genoise.world.dynamics import MLPDynamics, collect_random_transitions, model_rollout_cost
from genoise.world.forward import ForwardModel, load_forward_model, rollout, save_forward_model
from genoise.world.highway_env import HighwayTrafficEnv
from genoise.world.planners import MPC, plan_cem, plan_gradient, plan_mppi
from genoise.world.raster import RasterSpec, ego_raster, rasterize_cars
from genoise.world.traffic import RoadConfig, idm_acceleration, simulate, spawn_traffic, traffic_step
from genoise.world.uncertainty import predicted_cost, uncertainty_cost

ENV_ID = "genoise/HighwayTraffic-v0"

if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="genoise.world.highway_env:HighwayTrafficEnv")

__all__ = [
    "ENV_ID", "MPC", "CostConfig", "ForwardModel", "HighwayTrafficEnv", "MLPDynamics", "RasterSpec",
    "RoadConfig", "TrafficDataset", "collect_random_transitions", "collect_traffic", "driving_cost",
    "ego_raster", "idm_acceleration", "lane_cost", "load_forward_model", "model_rollout_cost",
    "offroad_cost", "plan_cem", "plan_gradient", "plan_mppi", "predicted_cost", "proximity_cost",
    "rasterize_cars", "rollout", "save_forward_model", "simulate", "spawn_traffic", "traffic_step",
    "uncertainty_cost",
]
