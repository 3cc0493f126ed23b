"""Hypothetical clusters: device catalogue, cluster specs, latency predictors and the SimPy simulator."""

from tts_sim.core.devices import DEVICES, DeviceSpec, get_device
from tts_sim.errors import ClusterError
from tts_sim.sim.cluster.continuous import ContinuousConfig
from tts_sim.sim.cluster.histogram import LogHistogram
from tts_sim.sim.cluster.latency import (
    LATENCY_PREDICTORS,
    LatencyPredictor,
    RooflinePredictor,
    TablePredictor,
    fit_roofline,
    predictor_for,
)
from tts_sim.sim.cluster.placement import ModelDemand, Placement, place
from tts_sim.sim.cluster.schedulers import SCHEDULERS, build_scheduler
from tts_sim.sim.cluster.simulator import (
    ArrivalTimes,
    ClosedLoop,
    ClusterSimulator,
    OpenLoop,
    SimulationResult,
    TimelineEvent,
)
from tts_sim.sim.cluster.spec import ClusterSpec, parse_cluster
from tts_sim.sim.cluster.static import StaticConfig
from tts_sim.sim.cluster.tensor_parallel import allreduce_s, auto_tp, parse_tp, tp_cluster
from tts_sim.sim.cluster.tokens import LengthDistribution, TokenModel, token_model_from_profile

__all__ = [
    "DEVICES", "LATENCY_PREDICTORS", "SCHEDULERS", "ArrivalTimes", "ContinuousConfig", "StaticConfig",
    "build_scheduler", "predictor_for", "ClosedLoop", "ClusterError", "ClusterSimulator", "ClusterSpec", "DeviceSpec",
    "LatencyPredictor", "LengthDistribution", "LogHistogram", "ModelDemand", "OpenLoop", "Placement",
    "RooflinePredictor", "SimulationResult", "TablePredictor", "TimelineEvent", "TokenModel", "fit_roofline",
    "get_device", "parse_cluster", "place", "token_model_from_profile", "allreduce_s", "auto_tp", "parse_tp",
    "tp_cluster",
]
