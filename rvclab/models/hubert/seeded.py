"""Seeded HuBERT weights in both upstream formats, for tests, notebooks and `rvclab weights make`.

``hubert_base.pt`` (fairseq layout: fp16 weights, ``cfg`` dict or ``args`` Namespace, a fairseq
``Dictionary`` pickled from a stand-in) and ``contentvec_base/`` (transformers layout, fp32), with
the same weights (rounded to fp16 first). Written atomically, never overwritten unless ``force``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import types
from collections import OrderedDict
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from rvclab import seeding
from rvclab.checkpoints import atomic_write, save_torch_atomic
from rvclab.models.hubert import config as hubert_config
from rvclab.models.hubert import rules
from rvclab.models.hubert.config import HubertConfig

FAIRSEQ_NAME = "hubert_base.pt"
TRANSFORMERS_DIR = "contentvec_base"
N_UNITS = 500  # k-means units of HuBERT base's second iteration
SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")


def seeded_state(config: HubertConfig, seed: int) -> dict[str, np.ndarray]:
    """Reference-named fp32 weights, seeded, rounded through fp16 (as the real file stores)."""
    from rvclab.models.hubert.torch import HubertModel, init_weights

    model = init_weights(HubertModel(config), seed)
    return {k: v.detach().half().float().numpy() for k, v in model.state_dict().items()}


def fairseq_model_args(config: HubertConfig) -> dict:
    """The model fields of a fairseq HuBERT config, as the real checkpoint names them."""
    conv = " + ".join(f"[{layer}]" for layer in config.conv_layers)
    return {
        "_name": "hubert", "extractor_mode": config.extractor_mode,
        "encoder_layers": config.num_layers, "encoder_embed_dim": config.embed_dim,
        "encoder_ffn_embed_dim": config.ffn_dim, "encoder_attention_heads": config.num_heads,
        "activation_fn": config.activation, "layer_type": "transformer", "dropout": 0.1,
        "attention_dropout": 0.1, "activation_dropout": 0.0, "encoder_layerdrop": 0.05,
        "dropout_input": 0.1, "dropout_features": 0.1, "final_dim": config.final_dim,
        "untie_final_proj": False, "layer_norm_first": config.layer_norm_first,
        "conv_feature_layers": conv.replace(" ", "").replace("]+[", "] + ["),
        "conv_bias": config.conv_bias, "logit_temp": 0.1, "target_glu": False,
        "feature_grad_mult": 0.1, "mask_length": 10, "mask_prob": 0.8,
        "conv_pos": config.conv_pos, "conv_pos_groups": config.conv_pos_groups,
        "latent_temp": [2.0, 0.5, 0.999995], "skip_masked": False, "skip_nomask": False,
    }


def fairseq_task_args(config: HubertConfig) -> dict:
    return {"_name": "hubert_pretraining", "data": "/checkpoint/data", "labels": ["km"],
            "label_dir": "/checkpoint/labels", "label_rate": 50.0,
            "sample_rate": config.sample_rate, "normalize": config.normalize,
            "enable_padding": False, "max_sample_size": 250000, "min_sample_size": 32000,
            "random_crop": True, "pad_audio": False}


@contextlib.contextmanager
def fairseq_stand_ins():
    """Yield a stand-in ``Dictionary`` class that pickles as ``fairseq.data.dictionary.Dictionary``.

    The three module names are registered in ``sys.modules`` only inside the block (earlier
    entries restored after), so the pickle names fairseq's class without fairseq installed.
    """
    names = ("fairseq", "fairseq.data", "fairseq.data.dictionary")
    saved = {n: sys.modules.get(n) for n in names}
    modules = {n: types.ModuleType(n) for n in names}

    class Dictionary:  # attribute state only; never used for anything but pickling
        pass

    Dictionary.__module__ = "fairseq.data.dictionary"
    Dictionary.__qualname__ = Dictionary.__name__ = "Dictionary"
    modules["fairseq.data.dictionary"].Dictionary = Dictionary
    modules["fairseq"].data = modules["fairseq.data"]
    modules["fairseq.data"].dictionary = modules["fairseq.data.dictionary"]
    sys.modules.update(modules)
    try:
        yield Dictionary
    finally:
        for n, mod in saved.items():
            if mod is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = mod


def _dictionary(cls, n_units: int):
    d = cls()
    symbols = list(SPECIALS) + [str(i) for i in range(n_units)]
    d.__dict__.update(
        bos_word="<s>", unk_word="<unk>", pad_word="<pad>", eos_word="</s>",
        symbols=symbols, count=[1] * len(SPECIALS) + [0] * n_units,
        indices={s: i for i, s in enumerate(symbols)},
        bos_index=0, pad_index=1, eos_index=2, unk_index=3, nspecial=len(SPECIALS),
    )
    return d


def write_fairseq(path: Path, state: dict, config: HubertConfig, *, style: str = "cfg",
                  seed: int = 0, overwrite: bool = False) -> Path:
    """A fairseq-format HuBERT checkpoint (fp16 weights, cfg dict or args Namespace, task state
    with a Dictionary, training-only tensors ``mask_emb`` and ``label_embs_concat``)."""
    import torch

    rng = np.random.default_rng(seed + 1)
    n_labels = N_UNITS + len(SPECIALS)
    model = OrderedDict((k, torch.from_numpy(v).half()) for k, v in state.items())
    mask_emb = rng.uniform(size=config.embed_dim).astype(np.float32)
    model["mask_emb"] = torch.from_numpy(mask_emb).half()
    model["label_embs_concat"] = torch.from_numpy(
        rng.normal(size=(n_labels, config.final_dim)).astype(np.float32)).half()
    model_args, task_args = fairseq_model_args(config), fairseq_task_args(config)
    if style == "args":
        args = argparse.Namespace(**{**model_args, **task_args, "arch": "hubert",
                                     "task": "hubert_pretraining"})
        cfg = None
    elif style == "cfg":
        args = None
        cfg = {"_name": None, "common": {"fp16": True, "seed": 1337}, "model": model_args,
               "task": task_args, "criterion": {"_name": "hubert", "pred_masked_weight": 1.0},
               "optimization": {"max_update": 400000, "lr": [0.0005]}}
    else:
        raise ValueError(f"style must be 'cfg' or 'args', got {style!r}")
    with fairseq_stand_ins() as Dictionary:
        payload = {
            "args": args, "cfg": cfg, "model": model, "criterion": None,
            "optimizer_history": [{"criterion_name": "HubertCriterion",
                                   "optimizer_name": "FairseqAdam",
                                   "lr_scheduler_state": {"best": None}, "num_updates": 400000}],
            "task_state": {"dictionaries": [_dictionary(Dictionary, N_UNITS)]},
            "extra_state": {"epoch": 1, "train_iterator": {"epoch": 1}},
            "last_optimizer_state": None,
        }
        return save_torch_atomic(payload, path, overwrite=overwrite)


def transformers_config(config: HubertConfig) -> dict:
    """config.json of a transformers HubertModel (+ ContentVec's classifier_proj_size)."""
    return {
        "architectures": ["HubertModelWithFinalProj"], "model_type": "hubert",
        "hidden_size": config.embed_dim, "num_hidden_layers": config.num_layers,
        "num_attention_heads": config.num_heads, "intermediate_size": config.ffn_dim,
        "hidden_act": config.activation, "feat_extract_activation": config.activation,
        "feat_extract_norm": "group" if config.extractor_mode == "default" else "layer",
        "conv_dim": [d for d, _, _ in config.conv_layers],
        "conv_kernel": [k for _, k, _ in config.conv_layers],
        "conv_stride": [s for _, _, s in config.conv_layers],
        "conv_bias": config.conv_bias, "num_conv_pos_embeddings": config.conv_pos,
        "num_conv_pos_embedding_groups": config.conv_pos_groups,
        "do_stable_layer_norm": config.layer_norm_first, "feat_proj_layer_norm": True,
        "layer_norm_eps": config.layer_norm_eps, "classifier_proj_size": config.final_dim,
        "vocab_size": 32, "torch_dtype": "float32",
    }


def write_transformers(directory: Path, state: dict, config: HubertConfig, *,
                       overwrite: bool = False) -> list[Path]:
    """A transformers-format directory: config.json + model.safetensors (HF key names)."""
    directory = Path(directory)
    arrays = {k: np.ascontiguousarray(v, dtype=np.float32)
              for k, v in rules.to_transformers(state).items()}
    rng = np.random.default_rng(7)
    arrays["masked_spec_embed"] = rng.uniform(size=config.embed_dim).astype(np.float32)
    text = json.dumps(transformers_config(config), indent=2) + "\n"
    weights = atomic_write(directory / "model.safetensors",
                           lambda tmp: save_file(arrays, str(tmp), metadata={"format": "pt"}),
                           overwrite=overwrite)
    cfg = atomic_write(directory / "config.json", lambda tmp: tmp.write_text(text),
                       overwrite=overwrite)
    return [cfg, weights]


def make(out_dir: Path, seed: int, force: bool, config: HubertConfig | None = None) -> list[Path]:
    """Write ``hubert_base.pt`` and ``contentvec_base/`` under ``out_dir`` (base config unless
    ``config``); returns the paths. When all exist they are kept unless ``force``
    or written by older seeding code (:mod:`rvclab.seeding`); when only
    some exist, the set is rewritten so the two formats hold the same weights (FileExistsError
    when one of them is a file rvclab did not write)."""
    config = config or HubertConfig()
    out_dir = Path(out_dir)
    targets = [out_dir / FAIRSEQ_NAME, out_dir / TRANSFORMERS_DIR / "config.json",
               out_dir / TRANSFORMERS_DIR / "model.safetensors"]
    names = [str(p.relative_to(out_dir)) for p in targets]
    fp = seeding.fingerprint(sys.modules[__name__], hubert_config,
                             config="" if config == HubertConfig() else repr(config))
    with seeding.exclusive(out_dir):
        if not seeding.needs_writing(out_dir, names, fp, force):
            return targets  # already there: kept, as the other seeded makers do
        users = [n for n in names if seeding.is_users(out_dir, n)]
        if users and not force:  # the set is incomplete or stale, and one file is not rvclab's
            raise FileExistsError(f"{out_dir / users[0]}: not written by rvclab's seeded maker, and the set "
                                  f"{', '.join(names)} needs writing; pass --force to replace it")
        state = seeded_state(config, seed)
        written = [write_fairseq(targets[0], state, config, seed=seed, overwrite=True)]
        written += write_transformers(out_dir / TRANSFORMERS_DIR, state, config, overwrite=True)
        seeding.record(out_dir, names, fp, seed)
    return written
