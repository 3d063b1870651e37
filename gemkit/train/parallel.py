"""Devices, data parallelism, sharding and mixed precision for the engine, through ``accelerate``.

The engine builds one :class:`accelerate.Accelerator` per run; what it does comes from the launcher:

- one process (plain ``gemkit train``): no wrapping, optional autocast;
- ``torchrun --nproc-per-node N`` or ``accelerate launch`` (DDP): each rank takes its own
  ``batch_size`` slice of every global micro-batch and DDP averages the gradients,
  g ← (1/W) Σ_r g_r, so one update equals single-process training on the global batch
  (world × batch_size records; gloo on CPU, NCCL on CUDA);
- ``accelerate launch --config_file configs/accelerate/fsdp.yaml`` (or a DeepSpeed config):
  the accelerate config's sharding plugin wraps the policy.

Objectives keep calling ``ctx.model(...)`` and reading its attributes: :class:`PolicyHandle`
sends calls through the prepared wrapper (so DDP hooks, sharding and autocast apply) and
attributes to the plain model (``generate``, ``disable_adapter``, hooks, ``parameters``).
"""
from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
from accelerate import Accelerator, DistributedType
from accelerate.state import AcceleratorState, GradientState, PartialState
from accelerate.utils import (
    DeepSpeedPlugin,
    DistributedDataParallelKwargs,
    FullyShardedDataParallelPlugin,
    fsdp2_prepare_model,
    parse_flag_from_env,
)

from gemkit.errors import ConfigError
from gemkit.train.config import TrainConfig

#: distributed types whose ranks each hold only a shard of the weights
SHARDED = (DistributedType.FSDP, DistributedType.DEEPSPEED)


def make_accelerator(config: TrainConfig) -> Accelerator:
    """The run's accelerator: precision from ``config.mixed_precision`` (else the launcher's config).

    accelerate keeps its precision and accumulation settings in process-wide singletons; they are
    reset (the process group stays) so that several runs in one process each get their own.
    """
    AcceleratorState._reset_state(reset_partial_state=False)
    GradientState._reset_state()
    # Buffers (rotary tables) never change in a language model, so DDP need not broadcast them
    # before every forward, which would also tie the ranks' forward counts together.
    ddp = DistributedDataParallelKwargs(broadcast_buffers=False)
    # The engine places the model itself (load_model puts it on config.device, or on this rank's
    # device when launched with several processes), so an explicit cuda:N is honoured.
    accelerator = Accelerator(cpu=config.device == "cpu", mixed_precision=config.mixed_precision,
                              gradient_accumulation_steps=config.grad_accum, device_placement=False,
                              kwargs_handlers=[ddp])
    # A second run in the same process (a resume in the tests) inherits the FSDP mark _fsdp_on_cpu put on the
    # process-level state, but accelerate then builds no plugin: it is built again here.
    marked = accelerator.distributed_type == DistributedType.FSDP and getattr(accelerator.state, "fsdp_plugin", None) is None
    if (accelerator.distributed_type == DistributedType.MULTI_CPU or marked) and parse_flag_from_env("ACCELERATE_USE_FSDP"):
        _fsdp_on_cpu(accelerator)
    if accelerator.distributed_type == DistributedType.MULTI_CPU and parse_flag_from_env("ACCELERATE_USE_DEEPSPEED"):
        _deepspeed_on_cpu(accelerator)
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        _fill_deepspeed_config(accelerator.state.deepspeed_plugin, config)
    return accelerator


def _fsdp_on_cpu(accelerator: Accelerator) -> None:
    """Honour an FSDP accelerate config on CPU processes too.

    accelerate (1.16 here) switches its FSDP plugin on only for GPU-type multi-device runs (its
    ``AcceleratorState`` keeps ``MULTI_CPU`` and ignores ``ACCELERATE_USE_FSDP``), while torch's FSDP2
    (``fully_shard``) runs on gloo. So on CPU the plugin is built from the same ``FSDP_*`` variables
    ``accelerate launch`` sets and the state marked FSDP: the sharded path is then testable on CPU.
    """
    accelerator.state.fsdp_plugin = FullyShardedDataParallelPlugin()
    # Every later AcceleratorState() copies the process-level state over its own: mark both.
    PartialState().distributed_type = DistributedType.FSDP
    accelerator.state.distributed_type = DistributedType.FSDP


def _deepspeed_on_cpu(accelerator: Accelerator) -> None:
    """Honour a DeepSpeed accelerate config on CPU processes too, as :func:`_fsdp_on_cpu` does for FSDP.

    accelerate 1.16 turns DeepSpeed on only when ``cpu=False`` and silently runs DDP otherwise, while
    DeepSpeed's CPU accelerator (``DS_ACCELERATOR=cpu``) trains ZeRO-2/3 over the gloo group
    accelerate has already started. The plugin is built from the ``ACCELERATE_DEEPSPEED_*`` variables.
    """
    plugin = DeepSpeedPlugin()
    plugin.set_mixed_precision(accelerator.mixed_precision)
    plugin.select(_from_accelerator_state=True)
    accelerator.state.deepspeed_plugins = plugin
    PartialState().distributed_type = DistributedType.DEEPSPEED
    accelerator.state.distributed_type = DistributedType.DEEPSPEED


def _fill_deepspeed_config(plugin: DeepSpeedPlugin, config: TrainConfig) -> None:
    """DeepSpeed's batch, accumulation and clipping settings from gemkit's, which the engine follows.

    The engine passes no DataLoader, so accelerate cannot fill an ``auto`` micro-batch size. DeepSpeed
    accumulates and clips inside its own step: a value the accelerate config sets explicitly must
    equal gemkit's, or the steps and the clipping would silently differ from what gemkit logs.
    """
    wanted = {"train_micro_batch_size_per_gpu": config.batch_size, "gradient_accumulation_steps": config.grad_accum,
              "gradient_clipping": config.max_grad_norm}
    ds_config = plugin.deepspeed_config
    clashes = [f"{key}: {ds_config[key]} in the accelerate config, {value} in gemkit's" for key, value in wanted.items()
               if ds_config.get(key, "auto") != "auto" and float(ds_config[key]) != value]
    if clashes:
        raise ConfigError("the DeepSpeed settings differ from gemkit's (--batch-size, --grad-accum, max_grad_norm): "
                          + "; ".join(clashes) + ". Set them to auto in the accelerate config, or pass the same values")
    ds_config.update(wanted)


@contextmanager
def whole_model_load(accelerator: Accelerator, *, policy: bool = True) -> Iterator[None]:
    """Load the model whole under ZeRO-3 unless the accelerate config sets ``zero3_init_flag: true``;
    with ``policy=False`` (a frozen model an objective loads in ``setup``, such as rm-ppo's reward
    model, which no DeepSpeed engine wraps and so none would gather) load it whole whatever the flag.

    accelerate registers its DeepSpeed config with transformers whatever that flag says, and
    transformers then builds every model inside ``deepspeed.zero.Init``, already partitioned. The
    frozen reference is a copy of the loaded policy, and a copy of partitioned weights holds empty
    tensors that no DeepSpeed engine gathers (its forward fails: "Padding_idx must be within
    num_embeddings"). Loaded whole, the policy is partitioned by ``deepspeed.initialize`` and the
    copy by its own inference engine (:func:`frozen_reference`).
    """
    plugin = accelerator.state.deepspeed_plugin if accelerator.distributed_type == DistributedType.DEEPSPEED else None
    if plugin is None or (plugin.zero3_init_flag and policy):
        yield
        return
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    unset_hf_deepspeed_config()
    try:
        yield
    finally:
        plugin.set_deepspeed_weakref()


def is_sharded(accelerator: Accelerator) -> bool:
    """True when each rank holds only a shard of the weights (FSDP, DeepSpeed ZeRO)."""
    return accelerator.distributed_type in SHARDED


class TrainedModules(torch.nn.Module):
    """The policy and an objective's extra trainable modules (a value head), prepared as one module,
    so one DDP/FSDP wrapper synchronises all their gradients. Calling it calls the policy."""

    def __init__(self, policy: torch.nn.Module, extras: list[torch.nn.Module]) -> None:
        super().__init__()
        self.policy = policy
        self.extras = torch.nn.ModuleList(extras)
        # FSDP's transformer auto-wrap reads the layer classes to shard one by one from here.
        self._no_split_modules = getattr(policy, "_no_split_modules", None)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.policy(*args, **kwargs)


class TokenCount:
    """Tokens fed through the policy (or the frozen reference) since the last :meth:`take`,
    split into forwards with autograd (trained: forward and backward) and without (no-grad)."""

    def __init__(self) -> None:
        self.trained = 0
        self.no_grad = 0

    def add(self, kwargs: dict[str, Any]) -> None:
        ids = kwargs.get("input_ids")
        if ids is None:
            return
        if torch.is_grad_enabled():
            self.trained += ids.numel()
        else:
            self.no_grad += ids.numel()

    def take(self) -> tuple[int, int]:
        counts = (self.trained, self.no_grad)
        self.trained = self.no_grad = 0
        return counts


class PolicyHandle:
    """What objectives see as ``ctx.model``: calls go through the prepared wrapper, attributes to the
    plain model. ``generate`` runs on the plain model (DDP has nothing to synchronise there); under
    FSDP/ZeRO-3 it passes ``synced_gpus=True`` so every rank keeps taking decoding steps, each of
    which gathers the full weights, until the longest rank's sample ends."""

    def __init__(self, module: Any, call: Any, accelerator: Accelerator | None, counter: TokenCount) -> None:
        object.__setattr__(self, "_module", module)
        object.__setattr__(self, "_call", call)
        object.__setattr__(self, "_accelerator", accelerator)
        object.__setattr__(self, "_counter", counter)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self._counter.add(kwargs)
        return self._call(*args, **kwargs)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        accelerator = self._accelerator
        if accelerator is not None and is_sharded(accelerator) and accelerator.num_processes > 1:
            kwargs.setdefault("synced_gpus", True)
        with accelerator.autocast() if accelerator is not None else nullcontext():
            return self._module.generate(*args, **kwargs)

    @contextmanager
    def whole_weights(self) -> Iterator[None]:
        """Under ZeRO-3, every rank holds the whole policy for a while (sampling); otherwise nothing.

        Sampling reads the weights outside a forward (LoRA merging, the shared prefill) and takes one
        forward per token: the partitions are gathered once (``deepspeed.zero.GatheredParameters``)
        and DeepSpeed's per-module hooks are taken off meanwhile, because they would release the
        gathered weights again after each module's forward. The hooks go back on before the update.
        """
        offload = getattr(getattr(self._call, "optimizer", None), "parameter_offload", None)
        if offload is None:
            yield
            return
        import deepspeed

        with deepspeed.zero.GatheredParameters(list(self._module.parameters())):
            for hook in offload.forward_hooks + offload.backward_hooks:
                hook.remove()
            offload.forward_hooks, offload.backward_hooks = [], []
            try:
                yield
            finally:
                offload._register_deepspeed_module(offload.module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._module, name, value)


def frozen_reference(accelerator: Accelerator, reference: torch.nn.Module, counter: TokenCount) -> PolicyHandle:
    """The full fine-tuning reference: a frozen copy in eval mode, on the policy's device.

    Under FSDP2 it is sharded like the policy (``fully_shard`` per decoder layer, same mesh and
    precision), so each rank holds 1/W of it too. It is sharded with accelerate's
    ``fsdp2_prepare_model`` rather than ``accelerator.prepare_model(..., evaluation_mode=True)``:
    the latter shards nothing under FSDP/DeepSpeed and registers the copy among the accelerator's
    models, where ``clip_grad_norm_`` then compares the policy's DTensor parameters with the
    reference's plain tensors and fails ("got mixed torch.Tensor and DTensor").

    Under DeepSpeed it gets its own DeepSpeed engine without an optimiser (:func:`_inference_config`),
    which computes in the policy's precision (bf16/fp16 weights when DeepSpeed's mixed precision is
    on, as the policy's engine casts them; a reference kept in fp32 would make step 1's rewards
    β·(log π − log π_ref) non-zero). Under ZeRO-3 that engine partitions it like the policy: each
    rank keeps 1/W of every weight and the engine's hooks gather a layer's weights for its forward
    only; under ZeRO-1/2 (which partition only optimiser state and gradients, which a frozen copy
    has none of) it is a stage-0 engine and keeps the whole copy. Under FSDP1 the copy stays whole.
    """
    reference = reference.eval().requires_grad_(False)
    prepared: torch.nn.Module = reference
    if accelerator.distributed_type == DistributedType.FSDP and accelerator.is_fsdp2:
        prepared = fsdp2_prepare_model(accelerator, reference)
    elif accelerator.distributed_type == DistributedType.DEEPSPEED:
        _refuse_a_copy_of_partitions(reference)
        import deepspeed

        prepared, *_ = deepspeed.initialize(model=reference, config=_inference_config(accelerator, reference))
        prepared.eval()
    return PolicyHandle(reference, prepared, None, counter)


def _refuse_a_copy_of_partitions(reference: torch.nn.Module) -> None:
    """A ZeRO-3 parameter holds an empty tensor outside a forward (its partition lives in
    ``ds_tensor``) and deepcopy copies the empty tensor only, so a copy of a policy built partitioned
    has no weights at all."""
    if any(p.numel() == 0 for p in reference.parameters()):
        raise ConfigError(
            "full fine-tuning with a frozen reference under DeepSpeed ZeRO-3 needs the policy loaded whole, but it "
            "was built already partitioned (zero3_init_flag: true in the accelerate config builds models inside "
            "deepspeed.zero.Init), and a copy of a partitioned model holds no weights. Set zero3_init_flag: false "
            "in the accelerate config (or launch with --zero3_init_flag false): gemkit then loads the policy whole "
            "and DeepSpeed partitions the policy and the reference, each rank keeping 1/W of both. Or train LoRA "
            "(--lora-r > 0), whose reference is the policy with its adapters off")


def _inference_config(accelerator: Accelerator, model: torch.nn.Module) -> dict[str, Any]:
    """The run's DeepSpeed config for a model that is only ever called forward without gradients.

    The precision stays the policy's, and so does a ZeRO-3 section (with its parameter offloading);
    a lower stage becomes stage 0, since a frozen model has no optimiser state or gradients to
    partition. No optimiser is passed, so the optimiser and scheduler sections go (DeepSpeed would
    otherwise build the optimiser, a CPU Adam when offloaded, or a scheduler with no optimiser).
    DeepSpeed asserts train_batch_size = micro-batch × accumulation × world even without training,
    and accelerate replaces its ``auto`` only in ``prepare``, after the reference is made: it is set
    here as accelerate will set it for the policy, and so are the bucket sizes accelerate derives
    from the hidden size when they are ``auto``.
    """
    config = copy.deepcopy(accelerator.state.deepspeed_plugin.deepspeed_config)
    config.pop("optimizer", None)
    config.pop("scheduler", None)
    config["train_batch_size"] = (config["train_micro_batch_size_per_gpu"] * config["gradient_accumulation_steps"]
                                  * accelerator.num_processes)
    if config["zero_optimization"]["stage"] != 3:
        config["zero_optimization"] = {"stage": 0}
        return config
    zero = config["zero_optimization"]
    zero.pop("offload_optimizer", None)
    hidden = getattr(getattr(model, "config", None), "hidden_size", None) or 0
    derived = {"reduce_bucket_size": hidden * hidden, "stage3_prefetch_bucket_size": int(0.9 * hidden * hidden),
               "stage3_param_persistence_threshold": 10 * hidden}
    for key, value in derived.items():
        if zero.get(key) == "auto":
            if hidden:
                zero[key] = value
            else:
                del zero[key]  # DeepSpeed's default
    return config


def any_rank(flag: bool, accelerator: Accelerator) -> bool:
    """True on every rank if any rank raised the flag (all ranks skip a bad batch together)."""
    if accelerator.num_processes == 1:
        return flag
    flags = accelerator.gather(torch.tensor([1.0 if flag else 0.0], device=accelerator.device))
    return bool(flags.max().item() > 0)


def mean_over_ranks(values: dict[str, float], accelerator: Accelerator) -> dict[str, float]:
    """Each logged scalar averaged over the ranks (every rank logs the same row)."""
    if accelerator.num_processes == 1 or not values:
        return values
    keys = sorted(values)
    tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=accelerator.device)
    reduced = accelerator.reduce(tensor, reduction="mean")
    return dict(zip(keys, (float(v) for v in reduced.tolist()), strict=True))
