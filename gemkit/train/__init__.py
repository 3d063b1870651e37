"""The shared training engine and the objective contract."""
from gemkit.train.checkpoint import load_trained, save_model
from gemkit.train.config import TrainConfig
from gemkit.train.engine import TrainResult, build_objective, train
from gemkit.train.objective import LossOutput, Objective, StepContext

__all__ = ["LossOutput", "Objective", "StepContext", "TrainConfig", "TrainResult", "build_objective", "load_trained",
           "save_model", "train"]
