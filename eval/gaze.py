"""SimGAN section 3.1 downstream evaluation: a gaze estimator trained on synthetic or refined
eyes and tested on real(-like) eyes (Table 2, Figure 7), with two checks of the refiner: the
pupil-centre shift between synthetic and refined eyes (label preservation, "1.1 +- 0.8 px")
and an automated visual Turing test (a real-vs-refined classifier's held-out accuracy).

Every function takes plain numpy arrays: images (N, H, W, C) in one consistent range (the
simgan data are in [-1, 1]) and gaze vectors (N, 3). Angular error (metrics.md):
arccos(<g_pred, g_true> / (|g_pred| |g_true|)) in degrees; "within d" is the % of images with
error <= d (d = 7 in the paper).
"""
import numpy as np
import tensorflow as tf

import keras

from .figures import save_cumulative_curve
from .tables import write_csv, write_json, write_markdown_table

# The paper's estimator (sec. 3.1, implementation details), for a 35 x 55 grey input:
#   (1) Conv3x3 32, (2) Conv3x3 32, (3) Conv3x3 64, (4) MaxPool3x3 stride 2, (5) Conv3x3 80,
#   (6) Conv3x3 192, (7) MaxPool2x2 stride 2, (8) FC9600, (9) FC1000, (10) FC3, (11) Euclidean
#   loss; constant learning rate 0.001, batch 512.
# With 'valid' convolutions 35 x 55 -> 29 x 49 -> 14 x 24 -> 10 x 20 -> 5 x 10, and
# 5 * 10 * 192 = 9600: the flattened features have exactly the size of FC9600, which we read
# literally as a 9600-unit layer (ReLU after every layer but the last).
PAPER_CONV_WIDTHS = (32, 32, 64, 80, 192)
PAPER_FC_WIDTHS = (9600, 1000)
GAZE_TABLE_COLUMNS = ("training_data", "n_train", "within_d_pct", "d_deg", "mean_error_deg",
                      "median_error_deg")


def angular_error_deg(pred, true):
    """Angle in degrees between predicted and true gaze vectors (both normalised first).

    Args:
        pred, true: (..., 3) arrays (broadcastable).
    Returns:
        float64 array of the broadcast shape without the last axis.
    """
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    if pred.shape[-1] != 3 or true.shape[-1] != 3:
        raise ValueError(f"gaze vectors must have 3 components; got {pred.shape} and "
                         f"{true.shape}")
    pred = pred / np.maximum(np.linalg.norm(pred, axis=-1, keepdims=True), 1e-12)
    true = true / np.maximum(np.linalg.norm(true, axis=-1, keepdims=True), 1e-12)
    return np.degrees(np.arccos(np.clip(np.sum(pred * true, axis=-1), -1.0, 1.0)))


def within(errors, d):
    """% of errors <= d (the paper's "% of images within d degrees")."""
    errors = np.asarray(errors, np.float64).ravel()
    if errors.size == 0:
        raise ValueError("within needs at least one error")
    return float(100.0 * np.mean(errors <= d))


def euclidean_loss(true, pred):
    """Caffe's EuclideanLoss: 1/(2N) sum_i ||pred_i - true_i||^2 (the paper's l2 loss)."""
    return 0.5 * keras.ops.mean(keras.ops.sum(keras.ops.square(pred - true), axis=-1))


def build_gaze_estimator(input_shape=(35, 55, 1), conv_widths=PAPER_CONV_WIDTHS,
                         fc_widths=PAPER_FC_WIDTHS, name="gaze_estimator"):
    """The paper's gaze CNN: 5 'valid' 3x3 conv layers with two max-pools, then FC layers.

    Args:
        input_shape: (H, W, C); at least 19 x 19 for the two pools.
        conv_widths: feature maps of the five conv layers (paper: 32, 32, 64, 80, 192).
        fc_widths: hidden FC layers before the 3-unit output (paper: 9600, 1000).
    Returns:
        keras.Model mapping images to unnormalised 3D gaze vectors.
    """
    if len(conv_widths) != 5:
        raise ValueError(f"conv_widths must list 5 widths, got {conv_widths!r}")
    inputs = keras.Input(input_shape, name="eye")
    x = inputs
    for i, width in enumerate(conv_widths):
        x = keras.layers.Conv2D(width, 3, activation="relu", name=f"conv{i + 1}")(x)
        if i == 2:
            x = keras.layers.MaxPooling2D(3, strides=2, name="pool1")(x)   # (4) MaxPool3x3/2
    x = keras.layers.MaxPooling2D(2, strides=2, name="pool2")(x)          # (7) MaxPool2x2/2
    x = keras.layers.Flatten(name="flatten")(x)
    for i, width in enumerate(fc_widths):
        x = keras.layers.Dense(width, activation="relu", name=f"fc{i + 1}")(x)
    outputs = keras.layers.Dense(3, name="gaze")(x)                      # (10) FC3
    return keras.Model(inputs, outputs, name=name)


def _check_pairs(images, labels, what="labels"):
    images = np.asarray(images, np.float32)
    labels = np.asarray(labels, np.float32)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise ValueError(f"images must be (N, H, W) or (N, H, W, C); got {images.shape}")
    if labels.ndim != 2 or labels.shape[1] != 3 or len(labels) != len(images):
        raise ValueError(f"{what} must be ({len(images)}, 3) gaze vectors for {len(images)} "
                         f"images; got {labels.shape} (built-in eye labels hold gaze in their "
                         f"first 3 columns: pass labels[:, :3])")
    return images, labels


def train_estimator(images, labels, *, steps, batch_size=512, seed=0, lr=1e-3,
                    conv_widths=PAPER_CONV_WIDTHS, fc_widths=PAPER_FC_WIDTHS, verbose=0,
                    jit_compile="auto"):
    """Trains a gaze estimator with Adam at a constant learning rate on the l2 loss.

    Args:
        images: (N, H, W[, C]) training images.
        labels: (N, 3) gaze vectors.
        steps: optimisation steps (batches).
        batch_size: examples per step (paper: 512).
        seed: seeds the initial weights and the shuffle order (keras.utils.set_random_seed).
        lr: learning rate (paper: 0.001).
        conv_widths, fc_widths: see `build_gaze_estimator`.
        verbose: Keras fit verbosity.
        jit_compile: passed to `Model.compile` (False saves the XLA compile of tiny models).
    Returns:
        The trained keras.Model.
    """
    images, labels = _check_pairs(images, labels)
    keras.utils.set_random_seed(seed)
    model = build_gaze_estimator(images.shape[1:], conv_widths, fc_widths)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=euclidean_loss,
                  jit_compile=jit_compile)
    ds = (tf.data.Dataset.from_tensor_slices((images, labels))
          .shuffle(min(len(images), 50_000), seed=seed, reshuffle_each_iteration=True)
          .repeat().batch(batch_size, drop_remainder=len(images) >= batch_size)
          .prefetch(tf.data.AUTOTUNE))
    model.fit(ds, epochs=1, steps_per_epoch=int(steps), verbose=verbose, shuffle=False)
    return model


def predict_gaze(model, images, batch_size=512):
    """Unit gaze vectors (N, 3) predicted by `model` for (N, H, W[, C]) images."""
    images = np.asarray(images, np.float32)
    if images.ndim == 3:
        images = images[..., None]
    pred = np.concatenate([np.asarray(model(images[i:i + batch_size], training=False))
                           for i in range(0, len(images), batch_size)]) if len(images) else \
        np.zeros((0, 3), np.float32)
    return pred / np.maximum(np.linalg.norm(pred, axis=-1, keepdims=True), 1e-12)


def evaluate_downstream(train_sets, test_images, test_gaze, out_dir, *, steps, d=7,
                        batch_size=512, seed=0, lr=1e-3, conv_widths=PAPER_CONV_WIDTHS,
                        fc_widths=PAPER_FC_WIDTHS, max_error=30.0, jit_compile="auto"):
    """Table 2 and Figure 7: one estimator per training set, all tested on the same real set.

    Args:
        train_sets: {name: (images, gaze)}, e.g. {"synthetic": ..., "refined": ...}.
        test_images, test_gaze: the labeled real(-like) test split.
        out_dir: folder for gaze_table.csv, gaze_table.md, gaze_cumulative.png and
            gaze_results.json.
        steps, batch_size, seed, lr, conv_widths, fc_widths, jit_compile: see
            `train_estimator` (every estimator uses the same seed).
        d: the threshold of the "% within d degrees" column.
        max_error: right end of the cumulative curves' x axis, degrees.
    Returns:
        The table rows: dicts with GAZE_TABLE_COLUMNS.
    """
    if not train_sets:
        raise ValueError("evaluate_downstream needs at least one training set")
    test_images, test_gaze = _check_pairs(test_images, test_gaze, "test_gaze")
    rows, errors_by_set, curves = [], {}, {}
    grid = np.arange(0.0, max_error + 1e-9, 0.5)
    for name, (images, gaze) in train_sets.items():
        model = train_estimator(images, gaze, steps=steps, batch_size=batch_size, seed=seed,
                                lr=lr, conv_widths=conv_widths, fc_widths=fc_widths,
                                jit_compile=jit_compile)
        errors = angular_error_deg(predict_gaze(model, test_images), test_gaze)
        errors_by_set[name] = errors
        curves[name] = [within(errors, x) for x in grid]
        rows.append({"training_data": name, "n_train": len(images),
                     "within_d_pct": within(errors, d), "d_deg": float(d),
                     "mean_error_deg": float(errors.mean()),
                     "median_error_deg": float(np.median(errors))})
    write_csv(rows, f"{out_dir}/gaze_table.csv", columns=GAZE_TABLE_COLUMNS)
    write_markdown_table(rows, f"{out_dir}/gaze_table.md", columns=GAZE_TABLE_COLUMNS,
                         floatfmt=".2f",
                         title=f"Gaze estimation on {len(test_images)} real test eyes "
                               f"(% within {d:g} degrees)")
    save_cumulative_curve(errors_by_set, f"{out_dir}/gaze_cumulative.png",
                          "angular error (degrees)", max_error,
                          title="Gaze estimation: cumulative angular error",
                          ylabel="% of images")
    write_json({"rows": rows, "n_test": len(test_images),
                "config": {"steps": steps, "batch_size": batch_size, "seed": seed, "lr": lr,
                           "d": d, "conv_widths": conv_widths, "fc_widths": fc_widths},
                "cumulative": {"error_deg": grid, "pct_within": curves}},
               f"{out_dir}/gaze_results.json")
    return rows


def pupil_shift(synthetic_images, refined_images):
    """Label preservation: distance between the pupil centres of each synthetic image and its
    refined version, by `tfgan3d.data.eyes.pupil_centre` (the paper's 1.1 +- 0.8 px at width
    55 came from hand-fitted ellipses).

    Returns:
        dict with mean_px, std_px, n and shifts_px (float64 (N,)).
    """
    from tfgan3d.data.eyes import pupil_centre
    synthetic = np.asarray(synthetic_images, np.float32)
    refined = np.asarray(refined_images, np.float32)
    if synthetic.shape != refined.shape:
        raise ValueError(f"synthetic and refined images differ in shape: {synthetic.shape} vs "
                         f"{refined.shape}")
    if synthetic.ndim == 4 and synthetic.shape[-1] != 1:
        synthetic, refined = synthetic.mean(axis=-1), refined.mean(axis=-1)
    shifts = np.linalg.norm(pupil_centre(synthetic).reshape(-1, 2)
                            - pupil_centre(refined).reshape(-1, 2), axis=-1).astype(np.float64)
    return {"mean_px": float(shifts.mean()), "std_px": float(shifts.std()),
            "median_px": float(np.median(shifts)), "n": len(shifts), "shifts_px": shifts}


def _realism_classifier(input_shape):
    """A small real-vs-refined CNN: three strided 3x3 convs, global average and max pools
    (the max keeps rare local artefacts visible), 1 logit."""
    inputs = keras.Input(input_shape)
    x = inputs
    for width in (16, 32, 64):
        x = keras.layers.Conv2D(width, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.Concatenate()([keras.layers.GlobalAveragePooling2D()(x),
                                    keras.layers.GlobalMaxPooling2D()(x)])
    return keras.Model(inputs, keras.layers.Dense(1)(x), name="realism_classifier")


def realism_accuracy(real_images, refined_images, *, steps, seed=0, batch_size=64, lr=1e-3,
                     jit_compile="auto"):
    """Automated visual Turing test: held-out accuracy of a real-vs-refined classifier.

    Both sets are shuffled and cut to the same size; the classifier trains on the first half of
    each and is tested on the second halves. 0.5 means indistinguishable, 1.0 always told
    apart.

    Returns:
        dict with accuracy, n_train and n_test (images per class).
    """
    real = np.asarray(real_images, np.float32)
    refined = np.asarray(refined_images, np.float32)
    real, refined = (x[..., None] if x.ndim == 3 else x for x in (real, refined))
    if real.shape[1:] != refined.shape[1:]:
        raise ValueError(f"real and refined images differ in shape: {real.shape[1:]} vs "
                         f"{refined.shape[1:]}")
    n = min(len(real), len(refined))
    if n < 4:
        raise ValueError(f"realism_accuracy needs at least 4 images of each kind, got {n}")
    rng = np.random.default_rng(seed)
    real, refined = real[rng.permutation(len(real))[:n]], refined[rng.permutation(
        len(refined))[:n]]
    half = n // 2
    x_train = np.concatenate([real[:half], refined[:half]])
    y_train = np.concatenate([np.zeros(half), np.ones(half)]).astype(np.float32)
    x_test = np.concatenate([real[half:], refined[half:]])
    y_test = np.concatenate([np.zeros(n - half), np.ones(n - half)])
    keras.utils.set_random_seed(seed)
    model = _realism_classifier(real.shape[1:])
    model.compile(optimizer=keras.optimizers.Adam(lr),
                  loss=keras.losses.BinaryCrossentropy(from_logits=True),
                  jit_compile=jit_compile)
    ds = (tf.data.Dataset.from_tensor_slices((x_train, y_train[:, None]))
          .shuffle(len(x_train), seed=seed, reshuffle_each_iteration=True).repeat()
          .batch(batch_size).prefetch(tf.data.AUTOTUNE))
    model.fit(ds, epochs=1, steps_per_epoch=int(steps), verbose=0, shuffle=False)
    logits = np.concatenate([np.asarray(model(x_test[i:i + 512], training=False))
                             for i in range(0, len(x_test), 512)])[:, 0]
    accuracy = float(np.mean((logits > 0) == (y_test > 0.5)))
    return {"accuracy": accuracy, "n_train": half, "n_test": n - half}
