"""Losses of the privacy game, named for the player they serve.

Every function returns PER-EXAMPLE values (shape [B]); callers reduce them with
`tf.nn.compute_average_loss(per_example, global_batch_size=...)` so that distributed training
averages over the global batch. Logits are cast to float32 first (mixed precision).

Multi-label privacy heads use sigmoid outputs per attribute; single-label heads (e.g. actor
identity) use a softmax. Fixes of the official code's defects: the multi-label uniform target is
0.5 per attribute (not all ones), and ensemble averages divide by the real number of models M.

Unknown labels: a multi-hot entry below 0 (-1, `records.UNKNOWN`: no annotation covers it) is
ignored by the multi-label privacy losses: the per-example BCE is the mean over that example's
KNOWN attributes, and 0 for an example with none (it adds nothing to the caller's sum; the
caller's global-batch mean still counts it). When no entry of the batch is unknown, the very
same ops as before run (a tf.cond on "any label < 0"), so values and gradients are unchanged.
"""

from __future__ import annotations

import tensorflow as tf


def _f32(x):
    return tf.cast(x, tf.float32)


def target_loss(labels, logits):
    """f_T: softmax cross-entropy with int class labels [B] -> [B]."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int32), logits=_f32(logits)
    )


def _mean_bce(labels, logits):
    bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
    return tf.reduce_mean(bce, axis=-1)


def _known_mean_bce(labels, logits):
    known = tf.cast(labels >= 0.0, logits.dtype)
    # Unknown entries get target 0 and weight 0: finite, and no gradient flows from them.
    bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.maximum(labels, 0.0), logits=logits)
    count = tf.reduce_sum(known, axis=-1)
    return tf.reduce_sum(bce * known, axis=-1) / tf.maximum(count, 1.0)


def privacy_loss(labels, logits):
    """f_b (multi-label): sigmoid BCE averaged over attributes; multi-hot labels [B, A] -> [B].

    Entries labelled -1 (unknown) are left out of the average (module docstring); without
    any, exactly the plain mean over attributes.
    """
    logits = _f32(logits)
    labels = tf.cast(labels, logits.dtype)
    return tf.cond(
        tf.reduce_any(labels < 0.0),
        lambda: _known_mean_bce(labels, logits),
        lambda: _mean_bce(labels, logits),
    )


def privacy_softmax_loss(labels, logits):
    """f_b (single-label): softmax CE; labels are int indices [B] or one-hot [B, K] -> [B]."""
    logits = _f32(logits)
    if labels.shape.rank == logits.shape.rank:
        return tf.nn.softmax_cross_entropy_with_logits(labels=_f32(labels), logits=logits)
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int32), logits=logits
    )


def negative_entropy(logits, multilabel: bool = True):
    """-H(p) per example [B]: for multi-label the mean over attributes of
    p log p + (1 - p) log(1 - p) with p = sigmoid(z); for single-label sum_k p_k log p_k.
    Minimum -log 2 (multi-label) or -log K at logits 0."""
    logits = _f32(logits)
    if multilabel:
        p = tf.sigmoid(logits)
        # log p = log_sigmoid(z), log(1 - p) = log_sigmoid(-z): stable for large |z|.
        ne = p * tf.math.log_sigmoid(logits) + (1.0 - p) * tf.math.log_sigmoid(-logits)
        return tf.reduce_mean(ne, axis=-1)
    log_p = tf.nn.log_softmax(logits, axis=-1)
    return tf.reduce_sum(tf.exp(log_p) * log_p, axis=-1)


def uniform_cross_entropy(logits, multilabel: bool = True):
    """Cross-entropy to the uniform target per example [B]: target 0.5 for every attribute
    (multi-label; BCE averaged over attributes) or 1/K for every class (single-label).
    Minimum log 2 (multi-label) or log K at logits 0."""
    logits = _f32(logits)
    if multilabel:
        half = tf.fill(tf.shape(logits), 0.5)
        return tf.reduce_mean(
            tf.nn.sigmoid_cross_entropy_with_logits(labels=half, logits=logits), axis=-1
        )
    return -tf.reduce_mean(tf.nn.log_softmax(logits, axis=-1), axis=-1)


def negative_privacy_loss(labels, logits):
    """f_d's adversarial term for `grl` (and `kbeam`'s chosen model): -privacy_loss, [B].

    Unknown (-1) labels are ignored as in privacy_loss."""
    return -privacy_loss(labels, logits)


def _stack_models(per_model_losses, who: str):
    if isinstance(per_model_losses, list | tuple):
        if not per_model_losses:
            raise ValueError(f"{who}: needs at least one model's losses, got an empty list")
        return tf.stack([_f32(x) for x in per_model_losses], axis=0)
    stacked = _f32(per_model_losses)
    if stacked.shape.rank != 2:
        raise ValueError(
            f"{who}: expected a list of [B] tensors or an [M, B] tensor, got shape {stacked.shape}"
        )
    return stacked


def worst_case_over_models(per_model_losses):
    """The ensemble's worst case per sample: M tensors [B] (or [M, B]) -> max over models [B]."""
    return tf.reduce_max(_stack_models(per_model_losses, "worst_case_over_models"), axis=0)


def mean_over_models(per_model_losses):
    """Average over the ensemble per sample, dividing by the REAL M: M x [B] -> [B]."""
    return tf.reduce_mean(_stack_models(per_model_losses, "mean_over_models"), axis=0)


def entropy_degrader_loss(
    privacy_logits_list, multilabel: bool = True, measure: str = "uniform_ce"
):
    """f_d's term for the `entropy` strategy: per sample, the max over the M privacy models of
    their certainty, [B]; f_d minimises it, pushing every model towards a uniform prediction.

    measure "uniform_ce" (default): cross-entropy to the uniform target; its gradient w.r.t. the
    logits is p - 0.5 (multi-label), which does not vanish when a privacy model is confident.
    measure "negative_entropy": -H(p); same minimiser (logits 0) but its gradient z p (1 - p)
    vanishes for saturated predictions, i.e. exactly where f_d most needs a signal.
    """
    if measure == "uniform_ce":
        fn = uniform_cross_entropy
    elif measure == "negative_entropy":
        fn = negative_entropy
    else:
        raise ValueError(f"entropy_degrader_loss: unknown measure {measure!r}")
    if not privacy_logits_list:
        raise ValueError("entropy_degrader_loss: needs at least one privacy model's logits")
    return worst_case_over_models([fn(z, multilabel) for z in privacy_logits_list])


def degrader_l1_loss(x, degraded):
    """Mean |f_d(X) - X| over every axis but the batch: frames or clips -> [B]."""
    diff = tf.abs(_f32(degraded) - _f32(x))
    return tf.reduce_mean(tf.reshape(diff, [tf.shape(diff)[0], -1]), axis=-1)


def kbeam_degrader_loss(labels, privacy_logits_list, multilabel: bool = True):
    """f_d's term for `kbeam`: minus the CE of the privacy model with the lowest batch loss.

    Returns ([B] per-example -CE of that model, int32 index of the model). Under a distribution
    strategy each replica picks from its own shard of the batch. Multi-label: unknown (-1)
    labels are ignored as in privacy_loss.
    """
    if not privacy_logits_list:
        raise ValueError("kbeam_degrader_loss: needs at least one privacy model's logits")
    loss_fn = privacy_loss if multilabel else privacy_softmax_loss
    per_model = tf.stack([loss_fn(labels, z) for z in privacy_logits_list], axis=0)  # [M, B]
    best = tf.argmin(tf.reduce_mean(per_model, axis=1), output_type=tf.int32)
    return -tf.gather(per_model, best), best
