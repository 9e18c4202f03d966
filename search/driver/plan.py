"""A plan before the bill: what a search will train, where, and roughly how long, without training it.

`python -m search.run ... --dry-run` prints the space, the trials and their resources, what the
connected cluster offers now and whether a trial fits on it, and an estimate of trial-hours from
a few real training steps of the smallest (head only) and the largest (everything the space can
switch on) selection, timed as Ray tasks with a trial's resources, so on the device the trials
will use. `check_placement` also runs before every real search: a search that asks for GPUs of a
cluster that has none and no autoscaler to add any says so at once instead of waiting forever.
"""

from __future__ import annotations

import re

from search.compat import autoscaler_node_types
from search.driver.trials import eval_epochs, reachable, trial_data
from search.settings.config import RunConfig
from search.steer.strategies import first_rung, make_sampler, startup_trials
from spaces import UsageError
from trainables import PREFIX_CACHE_FAMILIES, time_epoch

ADDRESS = re.compile(r"^(auto|local|(ray|ray\+ssl)://[^\s:/]+:\d+|[^\s:/]+:\d+)$")


def check_address(address: str | None) -> None:
    """One clear error for an --address that Ray could never connect to, or where no cluster is listening."""
    if address is None:
        return
    if not ADDRESS.match(address):
        raise UsageError(f"--address '{address}' is not a Ray address (use auto, HOST:PORT or ray://HOST:PORT)")
    reachable(address)  # a cluster that is not there: one line now, before the plan is made


def can_add_nodes(address: str | None) -> bool | None:
    """Whether the cluster could grow: False for a local Ray (started for this run, or `ray start` by
    hand: node types are named after node ids), True when an autoscaler names node types to launch, None when
    nothing says (another autoscaler, e.g. KubeRay's v2): then the search waits, as Ray does."""
    if address is None:
        return False
    types = autoscaler_node_types()
    if types is None:
        return None
    return any(node_type not in (node_id, f"node_{node_id}") for node_id, node_type in types.items())


def check_placement(config: RunConfig) -> dict[str, float]:
    """The cluster's resources now; UsageError when a trial can never be placed on it."""
    import ray

    total = ray.cluster_resources()
    gpus, cpus = float(total.get("GPU", 0)), float(total.get("CPU", 0))
    short = [f"{config.gpus_per_trial:g} GPU, the cluster has {gpus:g}" if gpus < config.gpus_per_trial else "",
             f"{config.cpus_per_trial:g} CPUs, the cluster has {cpus:g}" if cpus < config.cpus_per_trial else ""]
    short = [s for s in short if s]
    if short:
        growth = can_add_nodes(config.address)
        if growth is False:
            what = "asks for GPUs" if gpus < config.gpus_per_trial else "asks for more CPUs than it has"
            raise UsageError(f"each trial {what} ({'; '.join(short)}) and no autoscaler can add nodes "
                             f"(on a CPU machine, leave --gpus-per-trial at 0)")
        print(f"note: each trial needs {'; '.join(short)} now; the search waits for the autoscaler to add nodes"
              + ("" if growth else " (none reported: if none comes, Ctrl-C and --resume later)"), flush=True)
    return total


# Trials left waiting for nodes an autoscaler may add, beyond those the cluster holds now: its demand signal.
PENDING_WHILE_SCALING = 16


def pending_trials(config: RunConfig, resources: dict[str, float], growth: bool | None) -> int:
    """How many trials Ray Tune may hold waiting for resources at once (its TUNE_MAX_PENDING_TRIALS_PG).

    Ray Tune's own choice for a searcher of its own is one: each trial is created only once the one before it
    is placed, so a search reaches C trials at once only after C placements one after another (slow where
    trials are short; measured by bench/ray_scale.py), and an autoscaler sees demand for one trial at a time,
    scaling a GPU cluster up one node after another. Here: as many as fit on the cluster now, at least one,
    and PENDING_WHILE_SCALING more where an autoscaler can (or may) add nodes (`growth`: can_add_nodes)."""
    slots = float(resources.get("CPU", 0)) / config.cpus_per_trial
    if config.gpus_per_trial:
        slots = min(slots, float(resources.get("GPU", 0)) / config.gpus_per_trial)
    pending = max(1, int(slots))
    if config.address is not None and growth is not False:
        pending += PENDING_WHILE_SCALING
    return pending


PENDING_VARIABLE = "TUNE_MAX_PENDING_TRIALS_PG"


def estimate(prep, settings) -> dict:
    """Seconds per epoch of the smallest and the largest selection, timed on a trial's resources."""
    import ray

    everything = [u for units in prep.space.switch_units.values() for u in units]
    selections = {"smallest (head only)": [], "largest (every switch on)": everything}
    task = ray.remote(time_epoch).options(num_cpus=prep.config.cpus_per_trial, num_gpus=prep.config.gpus_per_trial)
    data = ray.put(trial_data(prep.data))
    futures = {name: task.remote({"units": units, "lr": 1e-4, "lr_scale": 1.0}, data, settings)
               for name, units in selections.items()}
    return dict(zip(futures, ray.get(list(futures.values()))))


def _size(n_bytes: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{n_bytes:.0f} B"


def prefix_cache_note(taxonomy) -> str:
    """Whether trials skip the frozen layers below what they train (trainables._prefix), and why not."""
    if taxonomy.model_type in PREFIX_CACHE_FAMILIES:
        return "on (frozen layers below a trial's lowest trained one run once per split, not every step)"
    why = ("a decoder's layers take a causal mask and rotary positions besides the hidden states"
           if taxonomy.decoder else f"{taxonomy.model_type} layers take more than the hidden states")
    return f"off: {why}, and the gradient-equivalence tests cover only the families it runs on"


def describe_units(unit_ids) -> str:
    """Unit ids in short: `ffn.in in layers 0-5, key in layer 3, pooler`."""
    layers: dict[str, list[int]] = {}
    others = []
    for unit_id in unit_ids:
        layer, _, module = unit_id.partition(".")
        if layer.isdigit():
            layers.setdefault(module, []).append(int(layer))
        else:
            others.append(unit_id)

    def span(numbers: list[int]) -> str:
        numbers = sorted(numbers)
        if len(numbers) > 1 and numbers == list(range(numbers[0], numbers[-1] + 1)):
            return f"layers {numbers[0]}-{numbers[-1]}"
        return ("layer " if len(numbers) == 1 else "layers ") + ", ".join(map(str, numbers))

    return ", ".join([f"{module} in {span(numbers)}" for module, numbers in layers.items()] + others) or "nothing"


def kappa_note(prep) -> str | None:
    """What PEFT's KappaTune picks on the model, and why `lora.kappa` is not a reference point where it is not."""
    if prep.kappa is None:
        return None
    picked = describe_units(prep.kappa.units)
    left = f"; left out, no unit adapts them: {', '.join(prep.kappa.left_out)}" if prep.kappa.left_out else ""
    missing = ""
    if "lora.kappa" not in prep.initial_points:
        missing = (f"; not a reference point here: no setting of the {prep.config.granularity} granularity's switches "
                   f"is exactly that (--granularity unit can express it)")
    return f"PEFT's KappaTune (find_kappa_target_modules, top_p 0.2) picks {picked}{left}{missing}"


def first_trials(prep) -> str:
    """What the run trains first, in words: `4 reference points and 1 spread over sizes`."""
    given = len(prep.initial_points)
    spread = sum(name.startswith("spread-") for name in prep.initial_points)
    if given == spread:
        return f"{spread} spread over sizes"
    return f"{given - spread} reference points" + (f" and {spread} spread over sizes" if spread else "")


def trials_note(prep) -> str:
    """What the run's trials will be: its reference points, then where the searched ones come from."""
    config = prep.config
    given = len(prep.initial_points)
    searched = max(0, config.num_samples - given)
    points = ", ".join(f"{name} {prep.space.proposal(point, 1.0)['trainable_params']:,}"
                       for name, point in prep.initial_points.items())
    if not searched:
        return f"{config.num_samples}: {points}; nothing is searched"
    startup = max(0, startup_trials(make_sampler(config.sampler, config.seed)) - given)
    gaps = f"every {config.fill_gaps}th proposal fills the widest gap of the front, " if config.fill_gaps else ""
    if config.sampler == "random":
        drawn = "drawn at random"
    elif startup >= searched:
        drawn = "drawn at random (the sampler's start)"
    elif startup:
        drawn = (f"the first {startup} at random (the sampler's start), the rest proposed from the finished trials' "
                 "results")
    else:
        drawn = "proposed from the finished trials' results"
    return (f"{config.num_samples}: {first_trials(prep)} ({points}), then {searched} searched: {gaps}"
            f"{drawn} by {config.sampler} (trials.parquet's `origin` says which)")


def print_plan(prep, resources: dict[str, float], timings: dict, final_rows: int | None = None) -> None:
    """The plan `--dry-run` prints; `final_rows`: the training rows of the final stage (or, without one, all the
    training split's rows, to price it)."""
    config, space = prep.config, prep.space
    trial_epochs = config.num_samples * config.max_epochs
    print(f"\nplan (nothing is trained): {config.model} on {prep.task.name}, {prep.pooling} pooling")
    groups: dict[tuple[str, ...], list[str]] = {}  # the switches by the values they offer
    for name, values in space.values_of.items():
        groups.setdefault(values, []).append(name)
    offered = "; ".join(f"{', '.join(values)}: {', '.join(names[:4])}"
                        + (f" and {len(names) - 4} more" if len(names) > 4 else "") for values, names in groups.items())
    print(f"  space: {config.granularity} granularity, {len(space.switch_units)} switches ({offered}) "
          f"and a learning-rate scale: {space.size():,} sub-networks")
    print(f"  trials: {trials_note(prep)}")
    print(f"  each trial: up to {config.max_epochs} epochs ({trial_epochs} trial-epochs at most); scheduler "
          f"{config.scheduler}, sampler {config.sampler}; learning-rate scale "
          f"{config.text('lr_scale_range').replace(',', '-')} x the size rule's")
    if note := kappa_note(prep):
        print(f"  lora.kappa: {note}")
    if config.scheduler != "none":
        rung = first_rung(config.grace_period, len(prep.data.train), config.batch_size)
        print("  early stopping: " + (f"first decision after epoch {rung} (--grace-period {config.grace_period})"
                                       if rung < config.max_epochs else
                                       f"none: its first rung (--grace-period {config.grace_period}: epoch {rung}) is "
                                       f"not below --max-epochs {config.max_epochs}"))
    validated = eval_epochs(prep)
    print(f"  each trial: {config.cpus_per_trial:g} CPU, {config.gpus_per_trial:g} GPU; "
          f"{len(prep.data.train):,} training rows in batches of {config.batch_size}, "
          f"{len(prep.data.validation):,} validation rows after "
          + ("every epoch (--eval-every-epoch)" if config.eval_every_epoch else
             f"epoch {', '.join(map(str, validated))} (where a decision reads them; --eval-every-epoch: every epoch)"))
    total = prep.taxonomy.total_params
    # fp32 weights (4 B a parameter), and for what trains its gradient and AdamW's two moments (12 B more);
    # activations come on top and grow with the batch, the sequence length and the layers trained
    print(f"  memory: the model's weights {_size(4 * total)} in fp32; a trial adds 12 B per trained parameter for "
          f"gradients and optimizer state: {_size(12 * total)} more for full fine-tuning, "
          f"{_size(12 * prep.taxonomy.head_params)} for the head alone (activations on top)")
    print(f"  frozen-prefix cache: {prefix_cache_note(prep.taxonomy)}")
    fits = min(resources.get("CPU", 0) // config.cpus_per_trial,
               resources.get("GPU", 0) // config.gpus_per_trial if config.gpus_per_trial else float("inf"))
    shown = ", ".join([f"{k} {resources[k]:g}" for k in ("CPU", "GPU") if k in resources]
                      + ([f"memory {resources['memory'] / 2**30:.0f} GiB"] if "memory" in resources else []))
    print(f"  cluster now: {shown or 'nothing'}; {int(fits)} trial(s) at a time"
          + ("" if fits else " (none yet: waiting for the autoscaler to add nodes)"))
    for name, timing in timings.items():
        print(f"  {name}: {timing['trainable_params']:,} trainable params, about {timing['epoch_seconds']:.1f} s an "
              f"epoch on {timing['device']} (start {timing['setup_seconds']:.1f} s, {timing['step_seconds']:.2f} s a "
              f"step, validation {timing['eval_seconds']:.1f} s)")
    validations = config.max_epochs if config.eval_every_epoch else len(validated)

    def trial_seconds(timing: dict) -> float:  # an epoch's estimate holds one validation: count those made
        return config.max_epochs * timing["epoch_seconds"] - (config.max_epochs - validations) * timing["eval_seconds"]

    small, large = (trial_seconds(t) / config.max_epochs for t in timings.values())
    typical = (small + large) / 2
    print(f"  estimate: {trial_epochs} trial-epochs x {typical:.1f} s (midway between the two) = "
          f"{trial_epochs * typical / 3600:.2f} trial-hours without early stopping (at most "
          f"{trial_epochs * large / 3600:.2f}); about {trial_epochs * typical / max(fits, 1) / 60:.0f} min of wall "
          f"time on what the cluster offers now")
    if final_rows is not None:
        print("  " + final_stage_note(prep, timings, final_rows, max(fits, 1)))


# the front's tickets beside the reference points: what the default run's fronts held on three tasks x 3 seeds
# (bench/results/default_run-lora-vs-no-lora-*.json): 3 to 6 points, some of them reference points
TYPICAL_FRONT = 5


def final_stage_note(prep, timings: dict, rows: int, at_once: float) -> str:
    """What the final stage costs (or would): the reference points and a typical front trained on `rows` rows."""
    config = prep.config
    epochs = config.final_epochs or config.max_epochs
    tickets = len([name for name in prep.initial_points if not name.startswith("spread")]) + TYPICAL_FRONT
    steps = -(-rows // config.batch_size) * epochs
    per_ticket = [t["setup_seconds"] + steps * t["step_seconds"] + t["eval_seconds"] for t in timings.values()]
    typical = sum(per_ticket) / len(per_ticket)
    cost = (f"about {tickets} tickets (the reference points and a typical front) x {epochs} epochs on {rows:,} rows "
            f"= {tickets * typical / 3600:.2f} trial-hours, about {tickets * typical / at_once / 60:.0f} min of wall "
            f"time here")
    if config.final_train_size is None:
        return (f"final stage: none (the search's tickets are its proxy's, {len(prep.data.train):,} rows x "
                f"{config.max_epochs} epochs); --final-train-size all would train the front and the reference points "
                f"again: {cost}; python -m search.train RUN --front does it on a finished run")
    return f"final stage (--final-train-size {config.final_train_size}): {cost}"
