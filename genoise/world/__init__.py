"""World models.

- Driving in dense traffic (Henaff, Canziani & LeCun, ICLR 2019): an IDM/MOBIL highway
  simulator (``genoise/HighwayTraffic-v0``), the traffic-camera data set, forward models,
  differentiable driving costs, planners and policies.
- Latent world models (JEPA): the Two Rooms arena (``genoise/TwoRooms-v0``) and its
  offline data, an action-conditioned JEPA that predicts representations, planning in its
  latent space (MPPI, CEM, gradient) and the GCBC / random / oracle baselines.

Importing this package registers both environments with gymnasium.
"""

from __future__ import annotations

import gymnasium as gym

from genoise.world.checkpoints import load_forward_model, load_policy, save_forward_model, save_policy
from genoise.world.control import expert, keep_speed, planner_controller, policy_controller
from genoise.world.costs import CostConfig, driving_cost, lane_cost, offroad_cost, proximity_cost
from genoise.world.dataset import TrafficDataset, collect_traffic
from genoise.world.dynamics import MLPDynamics, collect_random_transitions, model_rollout_cost
from genoise.world.evaluate import evaluate_driving, evaluation_table
from genoise.world.forward import ForwardModel, conv_encoder, rollout
from genoise.world.highway_env import HighwayTrafficEnv
from genoise.world.jepa import (
    ActionConditionedJEPA,
    JEPAConfig,
    JEPALossWeights,
    jepa_losses,
    prediction_loss,
)
from genoise.world.jepa_committee import JEPACommittee
from genoise.world.latent_planning import (
    LatentPlanner,
    OracleController,
    PlannerConfig,
    PolicyController,
    Protocol,
    RandomController,
    run_episodes,
)
from genoise.world.planners import MPC, plan_cem, plan_gradient, plan_mppi, planner_options
from genoise.world.policy import DrivingPolicy
from genoise.world.raster import RasterSpec, ego_raster, rasterize_cars
from genoise.world.traffic import RoadConfig, idm_acceleration, simulate, spawn_traffic, traffic_step
from genoise.world.two_rooms import GEOMETRY, RoomsGeometry, sample_tasks, step_positions
from genoise.world.two_rooms_data import (
    RoomsDataConfig,
    generate_trajectories,
    load_trajectories,
    write_trajectories,
)
from genoise.world.two_rooms_env import TwoRoomsEnv
from genoise.world.uncertainty import predicted_cost, uncertainty_cost

ENV_ID = "genoise/HighwayTraffic-v0"
TWO_ROOMS_ID = "genoise/TwoRooms-v0"

if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="genoise.world.highway_env:HighwayTrafficEnv")
if TWO_ROOMS_ID not in gym.registry:
    gym.register(id=TWO_ROOMS_ID, entry_point="genoise.world.two_rooms_env:TwoRoomsEnv")

__all__ = [
    "ENV_ID",
    "GEOMETRY",
    "MPC",
    "TWO_ROOMS_ID",
    "ActionConditionedJEPA",
    "CostConfig",
    "DrivingPolicy",
    "ForwardModel",
    "HighwayTrafficEnv",
    "JEPACommittee",
    "JEPAConfig",
    "JEPALossWeights",
    "LatentPlanner",
    "MLPDynamics",
    "OracleController",
    "PlannerConfig",
    "PolicyController",
    "Protocol",
    "RandomController",
    "RasterSpec",
    "RoadConfig",
    "RoomsDataConfig",
    "RoomsGeometry",
    "TrafficDataset",
    "TwoRoomsEnv",
    "collect_random_transitions",
    "collect_traffic",
    "conv_encoder",
    "driving_cost",
    "ego_raster",
    "evaluate_driving",
    "evaluation_table",
    "expert",
    "generate_trajectories",
    "idm_acceleration",
    "jepa_losses",
    "keep_speed",
    "lane_cost",
    "load_forward_model",
    "load_policy",
    "load_trajectories",
    "model_rollout_cost",
    "offroad_cost",
    "plan_cem",
    "plan_gradient",
    "plan_mppi",
    "planner_controller",
    "planner_options",
    "policy_controller",
    "predicted_cost",
    "prediction_loss",
    "proximity_cost",
    "rasterize_cars",
    "rollout",
    "run_episodes",
    "sample_tasks",
    "save_forward_model",
    "save_policy",
    "simulate",
    "spawn_traffic",
    "step_positions",
    "traffic_step",
    "uncertainty_cost",
    "write_trajectories",
]
