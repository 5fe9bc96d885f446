"""Trains a RegNet on an image classification dataset, resumably, then evaluates it.

    python -m tools.train                       # the default: Fashion-MNIST, preset "quick"
    python -m tools.train --preset long         # the longer Fashion-MNIST recipe
    python -m tools.train --model RegNetY016 --dataset folder --data_dir ~/photos \\
        --image_size 224 --batch_size 64 --epochs 100
    python -m tools.train --w0 24 --wa 36.44 --wm 2.49 --depth 13 --group_width 8 ...
    python -m tools.train --preset finetune --weights imagenet --model RegNetY002 \
        --dataset folder --data_dir ~/photos         # fine-tune (docs/FINETUNING.md)
    python -m tools.train --preset recipe_v2        # torchvision's V2 recipe (docs/TRAINING.md)
    python -m tools.train --teacher runs/big --distill_alpha 0.5 --distill_temperature 2 ...

Running the same command again after an interruption (even SIGKILL) resumes from the last
checkpoint in --model_dir. `--helpfull` lists every flag.
"""

import os

from absl import app, flags

from regnet_keras.design_space import AnyNetConfig
from regnet_keras.training import data as data_lib
from regnet_keras.training import distribute as distribute_lib
from regnet_keras.training import run_lock
from regnet_keras.training.auto_augment import POLICIES as AUTO_AUGMENT_POLICIES
from tools import cli
from tools import image_cache_flags

FLAGS = flags.FLAGS

# Presets set the defaults of flags the command line leaves unset. "quick" is the main job:
# >= 91% Fashion-MNIST test top-1 within 15 minutes on 2 CPU cores (README has the numbers).
# At 32x32 a zoo RegNet is down to 4x4 pixels after two blocks; these AnyNets keep RegNetX002's
# stage widths and group width 8 but give their first stage stride 1 (16x16 -> 2x2 instead of
# 8x8 -> 1x1), which learned Fashion-MNIST much faster per second of training here.
QUICK_DESIGN = AnyNetConfig(stage_widths=(24, 56, 152, 368), stage_depths=(1, 1, 2, 2),
                            stage_group_widths=(8, 8, 8, 8), stage_strides=(1, 2, 2, 2))
PRESETS = {
    "quick": dict(model=QUICK_DESIGN, dataset=data_lib.FASHION_MNIST, image_size=32,
                  batch_size=128, epochs=5, warmup_epochs=0.5, label_smoothing=0.1,
                  min_crop_area=1.0, eval_crop_fraction=1.0),
    # The same network trained 8x longer, with mild random-resized crops, random erasing and
    # the weight decay of short CIFAR-scale schedules (5e-4) rather than ImageNet's: 94.10% and
    # 94.00% (seeds 0 and 1) in README's measurement. 30 epochs without erasing reached 93.91%,
    # the test set falling behind the augmented training batches.
    "long": dict(model=QUICK_DESIGN, dataset=data_lib.FASHION_MNIST, image_size=32,
                 batch_size=128, epochs=40, warmup_epochs=1.0, label_smoothing=0.1,
                 weight_decay=5e-4, min_crop_area=0.8, erasing_probability=0.5,
                 eval_crop_fraction=1.0),
    # torchvision's V2 recipe (the "new recipe" of its RegNet weights) on `long`'s network and
    # budget: TrivialAugment (wide), MixUp 0.2 / CutMix 1.0 switching per batch, label smoothing
    # 0.1, random erasing 0.1, an EMA of the weights, no PCA lighting. Weight decay stays at
    # `long`'s 5e-4 (torchvision's 2e-5 is for 600 epochs), and the EMA's decay (0.999) spans
    # about 5% of the 18,720 steps, as torchvision's spans about 4% of its run. No FixRes: at
    # 32x32, the smallest input a RegNet takes, there is no smaller training crop. Measured, it
    # ends 1.3 points below `long` (92.79%): this small network underfits under its mixing and
    # augmentation at 40 epochs (docs/TRAINING.md has the ablation).
    "recipe_v2": dict(model=QUICK_DESIGN, dataset=data_lib.FASHION_MNIST, image_size=32,
                      batch_size=128, epochs=40, warmup_epochs=1.0, label_smoothing=0.1,
                      weight_decay=5e-4, min_crop_area=0.8, erasing_probability=0.1,
                      lighting_std=0.0, eval_crop_fraction=1.0,
                      auto_augment="trivialaugment_wide", mixup_alpha=0.2, cutmix_alpha=1.0,
                      ema_decay=0.999),
    "reference": dict(model="RegNetX002", image_size=224, batch_size=128, epochs=100,
                      warmup_epochs=5.0, label_smoothing=0.0, min_crop_area=0.08,
                      eval_crop_fraction=0.875),
    # Fine-tuning a pretrained backbone (--weights) on a few hundred images of one's own, with
    # the values that won docs/FINETUNING.md's measurement: the whole network from the first
    # step at the scratch rate (0.1 per 128 images) with a 1-epoch warmup, 12 epochs, crops of
    # at least a quarter of the image. A classifier-only phase first (--freeze_epochs 2) and a
    # quarter of the rate both measured worse there. image_size: the 224 of ImageNet weights.
    "finetune": dict(model=None, image_size=224, batch_size=32, epochs=12, freeze_epochs=0.0,
                     warmup_epochs=1.0, label_smoothing=0.1, weight_decay=5e-5,
                     min_crop_area=0.25, eval_crop_fraction=0.875),
}

flags.DEFINE_enum("preset", "quick", list(PRESETS),
                  "Defaults for the flags left unset. quick: a 6-block AnyNet (RegNetX002's "
                  "widths, first stage stride 1) on Fashion-MNIST at 32x32, 5 epochs (the main "
                  "job, see README). long: the same network, 40 epochs, mild crops, random "
                  "erasing, weight decay 5e-4 (94.0-94.1%, see README). recipe_v2: the same "
                  "network and budget with torchvision's V2 recipe (TrivialAugment, MixUp, "
                  "CutMix, EMA), 1.3 points below long on Fashion-MNIST (docs/TRAINING.md). "
                  "reference: the paper's ImageNet recipe (RegNetX002, 224x224, 100 epochs). "
                  "finetune: with --weights, the whole network from the first step, 12 epochs "
                  "at 224x224 (docs/FINETUNING.md).")
flags.DEFINE_string("model", None, "Zoo model name (RegNetX002 ... RegNetY320). Ignored when "
                    "--w0 or --stage_widths is given. Default: the preset's design, or with "
                    "--weights the design W carries.")
flags.DEFINE_string("weights", None, "Start from pretrained weights W (fine-tuning): "
                    "'imagenet' (keras.applications' file of --model), a regnet_keras weights "
                    "file, a keras.applications RegNet .h5 file (with --model), a .keras model, "
                    "a finished run directory, a PyTorch file, named weights (list_weights), a "
                    "KerasHub RegNet preset or a timm Hub repository (directory, hf://ORG/NAME, "
                    "kaggle://...). The backbone comes from W, the classifier too "
                    "when the class count matches; padding and normalisation follow W. Read "
                    "only when the run starts, never on resume.")
flags.DEFINE_float("freeze_epochs", None, "With --weights: epochs that train only the new "
                   "classifier, the backbone and its BN statistics frozen, before the whole "
                   "network trains.")
flags.DEFINE_float("head_lr", None, "Learning rate of those classifier-only epochs. Default: "
                   "0.1 per 128 images of the global batch.")
flags.DEFINE_bool("freeze_bn", False, "Keep every BatchNormalization layer in inference mode "
                  "with its scale and offset fixed (small datasets).")
flags.DEFINE_enum("class_weights", None, ["balanced"], "Weight each example's loss by "
                  "n / (classes x n_class) so that rare classes count as much as common ones.")
flags.DEFINE_integer("min_images_per_class", None, "Image folders: classes with fewer images "
                     "are refused by name. Default: 5.")
flags.DEFINE_enum("padding", None, ["symmetric", "same"], "Padding geometry of strided "
                  "convolutions. Default: W's, else symmetric (pycls).")
flags.DEFINE_integer("w0", None, "RegNet design: initial width (a multiple of 8). Giving it "
                     "builds RegNetConfig(w0, wa, wm, depth, group_width, se_ratio) instead of "
                     "--model.")
flags.DEFINE_float("wa", 36.44, "RegNet design: width slope.")
flags.DEFINE_float("wm", 2.49, "RegNet design: width multiplier (> 1).")
flags.DEFINE_integer("depth", 13, "RegNet design: number of blocks.")
flags.DEFINE_integer("group_width", 8, "RegNet design: channels per group of the 3x3 convs.")
flags.DEFINE_float("bottleneck", 1.0, "RegNet design: inner width of the blocks over their "
                   "width (1.0 in RegNetX/Y; the paper's b = 1 / this).")
flags.DEFINE_float("se_ratio", 0.0, "RegNet design: 0 for X blocks, 0.25 for Y blocks.")
flags.DEFINE_list("stage_widths", None, "AnyNet design: comma-separated output widths of the "
                  "stages. Giving it builds AnyNetConfig(stage_widths, stage_depths, "
                  "stage_group_widths, stage_strides, se_ratio) instead of --model.")
flags.DEFINE_list("stage_depths", None, "AnyNet design: blocks per stage.")
flags.DEFINE_list("stage_group_widths", None, "AnyNet design: group width per stage.")
flags.DEFINE_list("stage_bottlenecks", None, "AnyNet design: inner width over width per "
                  "stage. Default: 1.0 everywhere.")
flags.DEFINE_list("stage_strides", None, "AnyNet design: stride (1 or 2) of each stage's first "
                  "block. Default: 2 everywhere.")
flags.DEFINE_string("dataset", None, "'fashion_mnist' (the embedded default: Debian's "
                    "dataset-fashion-mnist, else tensorflow-datasets), 'folder' (--data_dir with "
                    "one sub-folder of images per class, nested folders allowed; JPEG, PNG, "
                    "GIF, BMP, WebP) or any tensorflow-datasets "
                    "name (imagenet2012, imagenette, cifar10...).")
flags.DEFINE_string("data_dir", None, "Where the data is: the image folder, the directory of "
                    "Fashion-MNIST IDX files, or the tensorflow-datasets data directory.")
flags.DEFINE_float("holdout_fraction", 0.1, "Image folders without train/ and test/ (or val/) "
                   "sub-trees, and tfds datasets without a test or validation split: the "
                   "fraction of each class held out for evaluation.")
flags.DEFINE_enum("corrupt_images", "error", list(data_lib.CORRUPT_POLICIES),
                  "Image files that cannot be decoded: 'error' stops before training and lists "
                  "them; 'skip' leaves them out and reports how many.")
flags.DEFINE_integer("image_size", None, "Input height and width in pixels (>= 32).")
flags.DEFINE_integer("batch_size", None, "Global batch size, over all replicas and workers.")
flags.DEFINE_integer("epochs", None, "Training epochs.")
flags.DEFINE_float("lr", None, "Peak learning rate. Default: 0.1 per 128 images of the global "
                   "batch (the reference's linear scaling).")
flags.DEFINE_float("warmup_epochs", None, "Epochs of linear warmup from 0.1x the peak learning "
                   "rate; cosine decay to 0 follows.")
flags.DEFINE_float("weight_decay", 5e-5, "L2 weight decay of convolution and classifier "
                   "kernels (not BN parameters or biases).")
flags.DEFINE_float("momentum", 0.9, "SGD momentum (Nesterov).")
flags.DEFINE_float("label_smoothing", None, "Label smoothing of the cross-entropy.")
flags.DEFINE_float("min_crop_area", None, "Random-resized crop: smallest fraction of the image "
                   "area kept (the reference: 0.08).")
flags.DEFINE_float("lighting_std", 0.1, "PCA lighting noise strength (0 turns it off).")
flags.DEFINE_bool("flip", True, "Random horizontal flips.")
flags.DEFINE_float("erasing_probability", 0.0, "Random erasing: the fraction of training "
                   "images in which a random rectangle (2-40% of the area) becomes noise.")
flags.DEFINE_float("eval_crop_fraction", None, "Evaluation: resize the shorter side to "
                   "image_size / this, then center crop (0.875: 256 -> 224; 1.0: resize only).")
flags.DEFINE_integer("train_image_size", None, "Training crops of this size (>= 32) while the "
                     "model is evaluated and saved at --image_size (FixRes: torchvision's V2 "
                     "weights train at 176 and evaluate at 224). Default: --image_size.")
flags.DEFINE_enum("auto_augment", "none", list(AUTO_AUGMENT_POLICIES),
                  "Automatic augmentation per image, from Keras' image layers: RandAugment "
                  "(2 operations) or TrivialAugment wide (1 operation, torchvision's ta_wide).")
flags.DEFINE_float("mixup_alpha", 0.0, "MixUp: blend each image and its label with another's, "
                   "in a proportion drawn from Beta(alpha, alpha) (0: off; torchvision V2: 0.2).")
flags.DEFINE_float("cutmix_alpha", 0.0, "CutMix: paste a rectangle of another image, the label "
                   "weighted by its area, drawn from Beta(alpha, alpha) (0: off; V2: 1.0).")
flags.DEFINE_float("cutmix_probability", 0.5, "With both MixUp and CutMix on: the fraction of "
                   "batches mixed by CutMix (the rest by MixUp).")
flags.DEFINE_float("ema_decay", 0.0, "Keep an exponential moving average of the weights with "
                   "this decay per step (0: off; 0.999 averages about the last 1000 steps). "
                   "Evaluation, best.keras, final.keras and everything exported from them use "
                   "the averaged weights.")
flags.DEFINE_string("teacher", None, "Distil from teacher T, a model trained on the same "
                    "classes, given as --weights is (a run directory, a weights file, a PyTorch "
                    "file, named weights with --teacher_model...). Any design and input size; "
                    "it runs in inference mode on the student's augmented batches.")
flags.DEFINE_string("teacher_model", None, "The teacher's zoo model, when T carries no design "
                    "(named weights, keras.applications files).")
flags.DEFINE_integer("teacher_image_size", None, "The teacher's input size: the student's "
                     "batches are resized to it. Default: T's run's image size, else the "
                     "student's training crops.")
flags.DEFINE_float("distill_alpha", 0.5, "With --teacher: the weight of the teacher's soft "
                   "targets in the loss (the labels' cross-entropy weighs 1 - this).")
flags.DEFINE_float("distill_temperature", 1.0, "With --teacher: the softmax temperature of "
                   "teacher and student in the soft loss (scaled by its square).")
flags.DEFINE_enum("preprocessing", None, ["imagenet", "unit"], "The model's input "
                  "normalisation: ImageNet mean/std, or x/255. Default: W's, else imagenet.")
flags.DEFINE_bool("mixed_precision", False, "Compute in float16 (GPU) or bfloat16 (CPU, TPU).")
flags.DEFINE_bool("jit_compile", False, "XLA-compile the training step. Off by default: XLA's "
                  "CPU grouped convolutions are orders of magnitude slower.")
flags.DEFINE_string("model_dir", None, "Run directory (checkpoints, best.keras, final.keras, "
                    "run.json, history.csv, logs/). Default: runs/<model>_<dataset>_<size>px. "
                    "An existing run there is resumed if it is the same run, refused otherwise.")
flags.DEFINE_integer("seed", 0, "Seed of initialisation, data order and augmentation.")
flags.DEFINE_enum("strategy", "auto", list(distribute_lib.STRATEGIES),
                  "tf.distribute strategy. auto: TPU when --tpu is given, MultiWorkerMirrored "
                  "when TF_CONFIG names several workers, Mirrored with several GPUs, else "
                  "default.")
flags.DEFINE_string("tpu", None, "TPU address (grpc://... or a Cloud TPU name).")
flags.DEFINE_integer("checkpoint_every_steps", 100, "Save the training state every this many "
                     "steps (and at every epoch end).")
flags.DEFINE_integer("eval_batch_size", 256, "Batch size of evaluation.")
flags.DEFINE_integer("max_steps", None, "Stop after this many optimizer steps in all (the run "
                     "stays resumable); for smoke tests.")
flags.DEFINE_bool("evaluate", True, "After training, evaluate final.keras on the held-out split "
                  "and write report.json and confusion_matrix.png into --model_dir.")


def _preset_value(name):
    """The flag's value if given on the command line, else the preset's, else its default."""
    if FLAGS[name].present:
        return FLAGS[name].value
    return PRESETS[FLAGS.preset].get(name, FLAGS[name].value)


def train_config_from_flags():
    from regnet_keras.design_space import AnyNetConfig, RegNetConfig
    from regnet_keras.training.loop import TrainConfig
    if FLAGS.stage_widths is not None:
        widths = [int(w) for w in FLAGS.stage_widths]
        stages = len(widths)

        def per_stage(name, default, kind=int):
            values = getattr(FLAGS, name)
            return tuple(kind(v) for v in values) if values is not None else (default,) * stages

        model = AnyNetConfig(stage_widths=tuple(widths),
                             stage_depths=per_stage("stage_depths", 1),
                             stage_group_widths=per_stage("stage_group_widths", 8),
                             stage_strides=per_stage("stage_strides", 2),
                             stage_bottlenecks=per_stage("stage_bottlenecks", 1.0, float),
                             se_ratio=FLAGS.se_ratio)
        model_label = "anynet_" + "-".join(map(str, widths))
    elif FLAGS.w0 is not None:
        model = RegNetConfig(w0=FLAGS.w0, wa=FLAGS.wa, wm=FLAGS.wm, depth=FLAGS.depth,
                             group_width=FLAGS.group_width, bottleneck=FLAGS.bottleneck,
                             se_ratio=FLAGS.se_ratio)
        model_label = f"regnet_w0{FLAGS.w0}_d{FLAGS.depth}"
    elif FLAGS.model is not None or not FLAGS.weights:
        model = _preset_value("model")
        if model is None:
            raise ValueError(f"preset {FLAGS.preset!r} has no model of its own: pass --weights "
                             "(the design comes from W) or --model.")
        if isinstance(model, str):
            from regnet_keras import zoo
            model = zoo.get_entry(model).name  # unknown names: the error lists the valid ones
            model_label = model
        else:
            model_label = f"{FLAGS.preset}_anynet"
    else:
        model = None  # W's design
        model_label = f"{FLAGS.preset}_from_{os.path.basename(os.path.normpath(FLAGS.weights))}"
    dataset = _preset_value("dataset") or data_lib.DEFAULT_DATASET
    image_size = _preset_value("image_size")
    if image_size is None or image_size < 32:
        raise ValueError(f"image_size={image_size} is invalid: RegNets need inputs of 32 "
                         "pixels or more.")
    model_dir = FLAGS.model_dir or os.path.join(
        "runs", f"{model_label}_{dataset}_{image_size}px")
    augmentation = data_lib.Augmentation(
        min_crop_area=_preset_value("min_crop_area"), flip=FLAGS.flip,
        lighting_std=_preset_value("lighting_std"),
        erasing_probability=_preset_value("erasing_probability"))
    from regnet_keras.training.distillation import Distillation
    from regnet_keras.training.mixing import Mixing
    mixing = Mixing(mixup_alpha=_preset_value("mixup_alpha"),
                    cutmix_alpha=_preset_value("cutmix_alpha"),
                    cutmix_probability=_preset_value("cutmix_probability"))
    distillation = Distillation(teacher=FLAGS.teacher, teacher_model=FLAGS.teacher_model,
                                alpha=FLAGS.distill_alpha,
                                temperature=FLAGS.distill_temperature,
                                teacher_image_size=FLAGS.teacher_image_size)
    return TrainConfig(
        model=model, dataset=dataset, data_dir=FLAGS.data_dir, image_size=image_size,
        batch_size=_preset_value("batch_size"), epochs=_preset_value("epochs"),
        lr=_preset_value("lr"),
        warmup_epochs=_preset_value("warmup_epochs"), weight_decay=_preset_value("weight_decay"),
        label_smoothing=_preset_value("label_smoothing"), momentum=FLAGS.momentum,
        augmentation=augmentation, eval_crop_fraction=_preset_value("eval_crop_fraction"),
        holdout_fraction=FLAGS.holdout_fraction, corrupt_images=FLAGS.corrupt_images,
        preprocessing=FLAGS.preprocessing, padding=FLAGS.padding,
        mixed_precision=FLAGS.mixed_precision,
        jit_compile=FLAGS.jit_compile, model_dir=model_dir, seed=FLAGS.seed,
        checkpoint_every_steps=FLAGS.checkpoint_every_steps,
        eval_batch_size=FLAGS.eval_batch_size, max_steps=FLAGS.max_steps, preset=FLAGS.preset,
        weights=FLAGS.weights, freeze_epochs=_preset_value("freeze_epochs") or 0.0,
        head_lr=FLAGS.head_lr, freeze_bn=FLAGS.freeze_bn, class_weights=FLAGS.class_weights,
        min_images_per_class=(FLAGS.min_images_per_class if FLAGS.min_images_per_class
                              is not None else data_lib.MIN_IMAGES_PER_CLASS),
        train_image_size=_preset_value("train_image_size"),
        auto_augment=_preset_value("auto_augment"), mixing=mixing,
        ema_decay=_preset_value("ema_decay"), distillation=distillation)


def open_source(config):
    """The config's data; image folders through the image cache of --image_cache, whose
    size is reported."""
    cache = None
    if config.dataset == data_lib.FOLDER:
        cache = image_cache_flags.image_cache(config.image_size, config.eval_crop_fraction)
    source = data_lib.open_source(config.dataset, config.data_dir,
                                  holdout_fraction=config.holdout_fraction,
                                  corrupt_images=config.corrupt_images,
                                  min_images_per_class=config.min_images_per_class,
                                  image_cache=cache)
    if source.cache_report is not None:
        print(source.cache_report.summary(), flush=True)
    return source


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}: every option is a --flag "
                             "(see --helpfull).")
    import time
    started = time.time()
    # The strategy first: multi-worker and TPU set-up must precede every other TensorFlow op.
    strategy = distribute_lib.make_strategy(FLAGS.strategy, FLAGS.tpu)
    from regnet_keras.training import loop as training
    try:
        config = train_config_from_flags()
        result = training.train(config, strategy, source=open_source(config))
    except (ValueError, OSError, run_lock.RunDirectoryInUseError) as error:
        # ValueError covers DataError and the weights errors; OSError a failed W download.
        raise app.UsageError(str(error))
    print(f"optimizer steps: {result['optimizer_steps']}")
    print(f"weights sha256: {result['weights_sha256']}")
    if result["status"] != "finished":
        print(f"stopped at step {result['optimizer_steps']}; run the same command to resume "
              f"({config.model_dir}).")
        return
    print(f"test top-1 {result['test_top1']:.4f}, top-5 {result['test_top5']:.4f} "
          f"(best epoch top-1 {result['best_test_top1']:.4f})")
    if not result["is_chief"]:
        return
    print(f"models: {os.path.join(config.model_dir, training.FINAL_MODEL)}, "
          f"{os.path.join(config.model_dir, training.BEST_MODEL)}")
    if FLAGS.evaluate:
        from regnet_keras.training import evaluation
        report = evaluation.evaluate_run(config.model_dir)
        print(f"balanced accuracy {report['balanced_accuracy']:.4f}; evaluation report: "
              f"{report['report_path']} (confusion matrix: {report['confusion_matrix_png']})")
    print(f"total wall time {time.time() - started:.0f} s")


if __name__ == "__main__":
    cli.run(main)
