"""Temporal Fusion Transformer: train, save, load, predict, explain.

One wrapper owns checkpoint naming and placement. ``train(..., out_dir)`` writes::

    out_dir/model.ckpt              best checkpoint (lightning; holds the dataset parameters too)
    out_dir/dataset_parameters.pt   TimeSeriesDataSet.get_parameters() (encoders, scalers,
    normaliser) out_dir/model.json              spec, train config, val metrics, epochs, seconds,
    versions

Heavy imports (torch, lightning, pytorch_forecasting) happen inside functions: importing this module
is cheap, the first train/load pays ~8 s.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forecasting.features import (
    GID,
    ISSUED_AT,
    TARGET_TIME,
    TIME_IDX,
    make_model_table,
    make_windows,
)
from forecasting.spec import (
    QUANTILES,
    SERIES,
    TS,
    ForecastInputError,
    SeriesSpec,
    TrainConfig,
    qcol,
)

CKPT = "model.ckpt"
PARAMS = "dataset_parameters.pt"
META = "model.json"
log = logging.getLogger(__name__)


@dataclass
class TrainedModel:
    """A trained TFT and what is needed to use it. ``net`` is the lightning module (eval mode)."""

    net: Any
    dataset_parameters: dict[str, Any]
    spec: SeriesSpec
    config: TrainConfig | None
    checkpoint_path: Path
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def quantiles(self) -> list[float]:
        return list(self.net.loss.quantiles)

    @property
    def interval_scale(self) -> float:
        """Widening of the quantiles around p50 fitted on the validation period (>= 1)."""
        return float(self.metrics.get("interval_scale", 1.0))


def _quiet() -> None:
    for name in ("lightning", "lightning.pytorch", "pytorch_lightning", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*Attribute 'loss' is an instance of `nn.Module`.*")
    warnings.filterwarnings("ignore", ".*Attribute 'logging_metrics' is an instance.*")
    warnings.filterwarnings("ignore", ".*is_categorical_dtype.*")
    warnings.filterwarnings("ignore", ".*The number of training batches.*")
    warnings.filterwarnings("ignore", ".*X does not have valid feature names.*")


def _dataset(table: pd.DataFrame, spec: SeriesSpec):
    from pytorch_forecasting import TimeSeriesDataSet
    from pytorch_forecasting.data import EncoderNormalizer, NaNLabelEncoder

    # the calendar's categories are known in advance: a short history whose training part lacks a
    # weekday must not make that weekday an unknown category in validation or at inference
    calendar = {
        "hour": NaNLabelEncoder().fit(pd.Series([str(h) for h in range(24)])),
        "weekday": NaNLabelEncoder().fit(pd.Series([str(d) for d in range(7)])),
    }
    return TimeSeriesDataSet(
        table,
        time_idx=TIME_IDX,
        target=spec.target,
        group_ids=[GID],
        max_encoder_length=spec.encoder_length,
        min_encoder_length=spec.encoder_length,
        max_prediction_length=spec.horizon,
        min_prediction_length=spec.horizon,
        static_categoricals=[SERIES, *spec.static_categoricals],
        time_varying_known_categoricals=["hour", "weekday"] if spec.calendar else [],
        time_varying_known_reals=[*spec.known_reals, *spec.known_lag_columns],
        time_varying_unknown_reals=[spec.target, *spec.observed_reals],
        # per-window scaling from the encoder: works for any (series, issue) window, adapts to level
        # shifts, and needs no per-series lookup at inference
        target_normalizer=EncoderNormalizer(transformation=spec.target_transform),
        add_relative_time_idx=True,
        add_target_scales=True,
        add_encoder_length=False,
        allow_missing_timesteps=False,
        categorical_encoders=calendar if spec.calendar else {},
    )


def train(
    frame: pd.DataFrame,
    spec: SeriesSpec,
    out_dir: str | Path,
    config: TrainConfig | None = None,
    **overrides: Any,
) -> TrainedModel:
    """Train one TFT over all series of ``frame`` (long: series, ts, target, covariates).

    The last ``config.val_hours`` of the common timeline are held out: training windows end before
    it, validation windows (early stopping on val loss, reported metrics) forecast inside it.
    ``overrides`` replace fields of ``config`` (e.g. ``max_epochs=3, hidden_size=8, seed=1``).
    Deterministic for a given seed on CPU.
    """
    from dataclasses import replace

    cfg = replace(config or TrainConfig(), **overrides)
    t0 = time.perf_counter()
    import lightning.pytorch as pl
    import torch
    from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
    from pytorch_forecasting import TemporalFusionTransformer, TimeSeriesDataSet
    from pytorch_forecasting.metrics import QuantileLoss

    _quiet()
    torch.set_num_threads(cfg.threads())
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = make_model_table(
        frame, spec, min_rows=spec.history_needed + 2 * spec.horizon + cfg.val_hours
    )
    cutoff = int(table[TIME_IDX].max()) - cfg.val_hours + 1  # first validation target hour
    train_table = table[table[TIME_IDX] < cutoff]
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    ds_train = _dataset(train_table, spec)
    val_table = table[table[TIME_IDX] >= cutoff - spec.encoder_length]
    ds_val = TimeSeriesDataSet.from_dataset(
        ds_train, val_table, stop_randomization=True, min_prediction_idx=cutoff
    )
    g = torch.Generator().manual_seed(cfg.seed)
    dl_train = ds_train.to_dataloader(
        train=True, batch_size=cfg.batch_size, num_workers=0, generator=g
    )
    dl_val = ds_val.to_dataloader(train=False, batch_size=max(cfg.batch_size, 256), num_workers=0)
    net = TemporalFusionTransformer.from_dataset(
        ds_train,
        learning_rate=cfg.learning_rate,
        hidden_size=cfg.hidden_size,
        attention_head_size=cfg.attention_head_size,
        dropout=cfg.dropout,
        hidden_continuous_size=cfg.hidden_continuous_size,
        lstm_layers=cfg.lstm_layers,
        loss=QuantileLoss(quantiles=list(QUANTILES)),
        log_interval=-1,
        reduce_on_plateau_patience=max(2, cfg.patience // 2),
    )
    ckpt_dir = out / "_checkpoints"
    if ckpt_dir.exists():
        shutil.rmtree(ckpt_dir)
    history: list[dict[str, float]] = []

    class _History(Callback):
        def on_validation_epoch_end(self, trainer, pl_module):  # noqa: D102
            if trainer.sanity_checking:
                return
            m = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
            history.append({"epoch": trainer.current_epoch, **m})
            vl = m.get("val_loss", float("nan"))
            if cfg.progress_bar:
                print(
                    f"epoch {trainer.current_epoch}: val_loss {vl:.4f}"
                    f" val_MAPE {100 * m.get('val_MAPE', float('nan')):.2f} %"
                    f" ({time.perf_counter() - t0:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
            else:  # progress for whoever listens (the CLI's runs print it)
                log.info(
                    "epoch %d of at most %d: validation loss %.4f (%.0f s)",
                    trainer.current_epoch + 1,
                    cfg.max_epochs,
                    vl,
                    time.perf_counter() - t0,
                )

    ckpt_cb = ModelCheckpoint(
        dirpath=ckpt_dir, filename="best", monitor="val_loss", mode="min", save_top_k=1
    )
    callbacks = [
        EarlyStopping(monitor="val_loss", patience=cfg.patience, mode="min"),
        ckpt_cb,
        _History(),
    ]
    tk = dict(
        max_epochs=cfg.max_epochs,
        accelerator=cfg.accelerator,
        devices=1,
        gradient_clip_val=cfg.gradient_clip_val,
        limit_train_batches=cfg.limit_train_batches,
        limit_val_batches=cfg.limit_val_batches,
        callbacks=callbacks,
        enable_progress_bar=cfg.progress_bar,
        enable_model_summary=False,
        logger=False,
        deterministic=cfg.deterministic,
        num_sanity_val_steps=0,
    )
    if cfg.max_time_s:
        tk["max_time"] = {"seconds": int(cfg.max_time_s)}
    tk.update(cfg.trainer_kwargs)
    trainer = pl.Trainer(**tk)
    trainer.fit(net, train_dataloaders=dl_train, val_dataloaders=dl_val)
    train_s = time.perf_counter() - t0
    best = ckpt_cb.best_model_path
    if not best:
        raise RuntimeError("training produced no checkpoint (no validation epoch ran)")
    ckpt = out / CKPT
    shutil.move(best, ckpt)
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    params = ds_train.get_parameters()
    torch.save(params, out / PARAMS)
    model = _load_net(ckpt, params, spec, cfg)
    metrics = {
        "train_seconds": round(train_s, 2),
        "epochs": len(history),
        "best_val_loss": float(ckpt_cb.best_model_score),
        "history": history,
        "train_windows": len(ds_train),
        "val_windows": len(ds_val),
    }
    metrics.update(_val_metrics(model, ds_val, cfg))
    model.metrics = metrics
    _write_meta(out, spec, cfg, metrics)
    return model


def _val_metrics(model: TrainedModel, ds_val, cfg: TrainConfig) -> dict[str, float]:
    from forecasting.metrics import coverage, mae, mape_values, pinball

    pred, y = _run(
        model.net, ds_val.to_dataloader(train=False, batch_size=512, num_workers=0), want_y=True
    )
    pred = np.sort(pred, axis=-1)  # QuantileLoss does not force order (as in predict_many)
    qs = model.quantiles
    p50 = pred[..., qs.index(0.5)]
    ape = mape_values(y.reshape(-1), p50.reshape(-1))
    s = interval_scale(y, p50, pred[..., qs.index(0.1)], pred[..., qs.index(0.9)])
    lo = p50 + s * (pred[..., qs.index(0.1)] - p50)
    hi = p50 + s * (pred[..., qs.index(0.9)] - p50)
    return {
        "interval_scale": s,
        "val_coverage_p10_p90_calibrated": coverage(y.reshape(-1), lo.reshape(-1), hi.reshape(-1)),
        "val_mae": mae(y.reshape(-1), p50.reshape(-1)),
        "val_mape": float(np.mean(ape)) if ape.size else float("nan"),
        "val_pinball": float(
            np.mean([pinball(y.reshape(-1), pred[..., i].reshape(-1), q) for i, q in enumerate(qs)])
        ),
        "val_coverage_p10_p90": coverage(
            y.reshape(-1),
            pred[..., qs.index(0.1)].reshape(-1),
            pred[..., qs.index(0.9)].reshape(-1),
        ),
    }


def interval_scale(y, p50, p10, p90, target: float = 0.8, lowest: float = 1.0) -> float:
    """Smallest s >= ``lowest`` with which p50 + s * (p10 - p50) .. p50 + s * (p90 - p50) covers
    ``target`` of the validation actuals (capped at 5). Widen-only by default: a QuantileLoss TFT
    trained for a few epochs on CPU came out over-confident (p10-p90 coverage ~63 % on validation
    and test in the DACF benchmark); an interval that is too wide is the safer error for a scheduler
    reading p90. An ensemble (averaged quantiles of already-widened members) may narrow
    (``lowest`` < 1)."""
    y, p50, p10, p90 = (np.asarray(a, float).reshape(-1) for a in (y, p50, p10, p90))
    for s in np.arange(lowest, 5.0001, 0.05):
        cov = np.mean((y >= p50 + s * (p10 - p50)) & (y <= p50 + s * (p90 - p50)))
        if cov >= target:
            return float(round(s, 2))
    return 5.0


def _write_meta(out: Path, spec: SeriesSpec, cfg: TrainConfig, metrics: dict) -> None:
    from importlib.metadata import version

    meta = {
        "spec": spec.to_dict(),
        "config": cfg.to_dict(),
        "metrics": metrics,
        "versions": {p: version(p) for p in ("torch", "lightning", "pytorch-forecasting")},
    }
    (out / META).write_text(json.dumps(meta, indent=2, default=str))


def _load_net(ckpt: Path, params: dict, spec: SeriesSpec, cfg: TrainConfig | None) -> TrainedModel:
    from pytorch_forecasting import TemporalFusionTransformer

    _quiet()
    net = TemporalFusionTransformer.load_from_checkpoint(
        str(ckpt), map_location="cpu", weights_only=False
    )
    net.eval()
    return TrainedModel(
        net=net, dataset_parameters=params, spec=spec, config=cfg, checkpoint_path=Path(ckpt)
    )


def load(path: str | Path) -> TrainedModel:
    """Load a model written by :func:`train`: ``path`` is its ``out_dir`` or the ``model.ckpt``."""
    import torch

    p = Path(path)
    d = p if p.is_dir() else p.parent
    ckpt = d / CKPT if p.is_dir() else p
    if not ckpt.exists():
        raise FileNotFoundError(f"no checkpoint at {ckpt}")
    meta = json.loads((d / META).read_text()) if (d / META).exists() else {}
    spec = SeriesSpec.from_dict(meta["spec"]) if "spec" in meta else None
    cfg = None
    if "config" in meta:
        cfg = TrainConfig(**meta["config"])
    params = torch.load(d / PARAMS, weights_only=False) if (d / PARAMS).exists() else None
    if params is None or spec is None:
        raise FileNotFoundError(f"{d}: {PARAMS} and {META} must sit beside the checkpoint")
    torch.set_num_threads((cfg or TrainConfig()).threads())
    m = _load_net(ckpt, params, spec, cfg)
    m.metrics = meta.get("metrics", {})
    return m


def _run(net, dataloader, want_y: bool = False, want_x: bool = False):
    """Forward every batch in eval mode, no grad: quantiles (n, horizon, n_quantiles) [, y] [,
    xs]."""
    import torch

    outs, ys, xs = [], [], []
    net.eval()
    with torch.no_grad():
        for x, y in dataloader:
            o = net(x)
            outs.append(net.to_quantiles(o).cpu().numpy())
            if want_y:
                ys.append(y[0].cpu().numpy())
            if want_x:
                xs.append(x)
    pred = np.concatenate(outs)
    res: list[Any] = [pred]
    if want_y:
        res.append(np.concatenate(ys))
    if want_x:
        res.append(xs)
    return res if len(res) > 1 else pred


def predict_many(
    model: TrainedModel,
    history: pd.DataFrame,
    issued_ats: Sequence,
    future_covariates: pd.DataFrame | None = None,
    *,
    batch_size: int = 512,
    series: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Forecast every (series, issue time) in one batched pass.

    For each issue time only rows of ``history`` with ``ts < issued_at`` are read (encoder and
    lags); known-future covariates of the forecast hours come from ``future_covariates`` (see
    :func:`forecasting.features.make_windows`). Returns ``issued_at, target_time, series, p02, p10,
    p25, p50, p75, p90, p98`` sorted by (issued_at, series, target_time).
    """
    from pytorch_forecasting import TimeSeriesDataSet

    _quiet()
    spec = model.spec
    windows = make_windows(history, spec, issued_ats, future_covariates, series=series)
    known = set(model.dataset_parameters["static_categoricals"])
    enc = model.dataset_parameters["categorical_encoders"][SERIES]
    unknown = sorted(set(windows[SERIES]) - set(enc.classes_))
    if unknown and SERIES in known:
        raise ForecastInputError(f"series {unknown} were not in the training data of this model")
    ds = TimeSeriesDataSet.from_parameters(model.dataset_parameters, windows, predict=True)
    dl = ds.to_dataloader(train=False, batch_size=batch_size, num_workers=0)
    pred, xs = _run(model.net, dl, want_x=True)
    idx = pd.concat([ds.x_to_index(x) for x in xs], ignore_index=True)
    H = spec.horizon
    qs = model.quantiles
    gid = np.repeat(idx[GID].to_numpy(), H)
    first = np.repeat(idx[TIME_IDX].to_numpy(), H) + np.tile(np.arange(H), len(idx))
    res = pd.DataFrame({GID: gid, TARGET_TIME: pd.to_datetime(first * 3_600 * 10**9, utc=True)})
    parts = res[GID].str.rsplit("|", n=1, expand=True)
    res[SERIES] = parts[0]
    res[ISSUED_AT] = pd.to_datetime(parts[1], utc=True)
    flat = pred.reshape(-1, len(qs))
    flat = np.sort(flat, axis=1)  # QuantileLoss does not force order; keep monotone
    s = model.interval_scale
    if s != 1.0:  # validation-fitted widening around p50 (see interval_scale)
        mid = flat[:, [qs.index(0.5)]]
        flat = mid + s * (flat - mid)
    for i, q in enumerate(qs):
        res[qcol(q)] = flat[:, i]
    if not (res[TARGET_TIME] >= res[ISSUED_AT]).all():
        raise AssertionError("forecast for a target before its issue time")
    cols = [ISSUED_AT, TARGET_TIME, SERIES, *[qcol(q) for q in qs]]
    return res[cols].sort_values([ISSUED_AT, SERIES, TARGET_TIME]).reset_index(drop=True)


def predict(
    model: TrainedModel,
    history: pd.DataFrame,
    issued_at,
    future_covariates: pd.DataFrame | None = None,
    *,
    series: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Forecast ``spec.horizon`` hours from ``issued_at`` for every series in ``history`` (or
    ``series``), using only rows with ``ts < issued_at``."""
    return predict_many(model, history, [issued_at], future_covariates, series=series)


def explain(
    model: TrainedModel,
    history: pd.DataFrame,
    issued_at,
    future_covariates: pd.DataFrame | None = None,
) -> dict[str, pd.Series]:
    """The TFT's interpretation for one issue time, summed over series: variable importances
    (static / encoder / decoder, each normalised to sum 1) and attention over encoder positions
    (index: hours relative to the issue time, -encoder_length..-1)."""
    import torch
    from pytorch_forecasting import TimeSeriesDataSet

    _quiet()
    windows = make_windows(history, model.spec, [issued_at], future_covariates)
    ds = TimeSeriesDataSet.from_parameters(model.dataset_parameters, windows, predict=True)

    net = model.net
    with torch.no_grad():
        out = {}
        for x, _ in ds.to_dataloader(train=False, batch_size=256, num_workers=0):
            raw = net(x)
            interp = net.interpret_output(raw, reduction="sum")
            for k, v in interp.items():
                out[k] = out.get(k, 0) + v.cpu().numpy()

    def norm(v, names):
        s = pd.Series(np.asarray(v, float), index=names)
        return s / s.sum() if s.sum() else s

    enc_len = model.spec.encoder_length
    att = np.asarray(out["attention"], float)
    return {
        "static_variables": norm(out["static_variables"], net.static_variables),
        "encoder_variables": norm(out["encoder_variables"], net.encoder_variables),
        "decoder_variables": norm(out["decoder_variables"], net.decoder_variables),
        "attention": pd.Series(
            att[:enc_len] / max(att[:enc_len].sum(), 1e-12),
            index=np.arange(-enc_len, 0),
            name="attention",
        ),
    }


def series_of(frame: pd.DataFrame) -> list[str]:
    return sorted(frame[SERIES].astype(str).unique())


__all__ = ["TrainedModel", "train", "load", "predict", "predict_many", "explain", "TS"]
