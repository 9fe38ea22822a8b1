"""`ImageDataset`: the examples' metadata and the tf.data pipelines over it.

Every dataset loader returns one of these. Its metadata lives in numpy
(so samplers can read `labels`); images are decoded lazily, in tf.data, by
the reader of the binaries (`tfcaf.data.images.read_image`).
"""

import dataclasses
import logging

import numpy as np
import tensorflow as tf

from tfcaf.data import checks, images, transforms
from tfcaf.errors import TfcafError

log = logging.getLogger(__name__)


def _size_hw(image_size):
    if isinstance(image_size, int):
        return (image_size, image_size)
    height, width = image_size
    return (int(height), int(width))


@dataclasses.dataclass(eq=False)
class ImageDataset:
    """One split of a dataset.

    Attributes:
        name: dataset name ("digits", "cub", "imagenet", "folder").
        split: split name.
        paths: (N,) str, image file paths.
        labels: (N,) int32, class ids in [0, num_classes).
        boxes: N float32 arrays (n_i, 4), (x_min, y_min, x_max, y_max) in
            pixels of the STORED image, x_max/y_max exclusive (see
            `tfcaf.data.transforms`); n_i may be 0.
        class_names: names of the class ids, in id order.
        image_size: (H, W) pixels of the images the pipelines yield.
        resize: "resize" (whole image to image_size) or "crop" (aspect
            kept, centre crop of `crop_fraction`).
        crop_fraction: for "crop": image_size / resized shorter side.
        augment: the `transforms.Augment` used for `augment=True`.
        source: the annotation file listing the examples (for messages).
        box_file: the file the boxes are read from, or would be when it
            is optional and absent (folder: `boxes.csv`), for messages;
            "" when the loader names none.
        masks: None (no masks), or N pairs ([instance mask files], ignore
            file or "") of ground-truth foreground masks
            (`tfcaf.data.masks`); an example without a mask has ([], "").
        mask_file: the file the masks are listed in, for messages.
    """
    name: str
    split: str
    paths: np.ndarray
    labels: np.ndarray
    boxes: list
    class_names: list
    image_size: tuple = (224, 224)
    resize: str = "resize"
    crop_fraction: float = 0.875
    augment: transforms.Augment = transforms.Augment()
    source: str = ""
    box_file: str = ""
    masks: list | None = None
    mask_file: str = ""

    def __post_init__(self):
        self.paths = np.asarray(self.paths, dtype=str)
        self.labels = np.asarray(self.labels, dtype=np.int32)
        self.boxes = [np.asarray(b, np.float32).reshape(-1, 4)
                      for b in self.boxes]
        self.image_size = _size_hw(self.image_size)
        if not len(self.paths) == len(self.labels) == len(self.boxes):
            raise TfcafError("paths, labels and boxes differ in length")
        if self.masks is not None and len(self.masks) != len(self.paths):
            raise TfcafError("paths and masks differ in length")
        if len(self.labels) and not (
                0 <= self.labels.min() and
                self.labels.max() < len(self.class_names)):
            raise TfcafError("labels outside [0, num_classes)")
        if self.resize not in transforms.RESIZE_MODES:
            raise TfcafError(f"resize {self.resize!r} not in "
                             f"{transforms.RESIZE_MODES}")
        self._tensors = None

    def __len__(self):
        return len(self.paths)

    @property
    def num_classes(self):
        return len(self.class_names)

    @property
    def max_boxes(self):
        """Largest box count of an example (at least 1): the default
        fixed box count of `example` and the pipelines."""
        return max([1] + [len(b) for b in self.boxes])

    def subset(self, keep):
        """A copy holding only the examples selected by `keep` (bool (N,)
        or indices); class ids are unchanged."""
        keep = np.arange(len(self))[keep]
        return dataclasses.replace(
            self, paths=self.paths[keep], labels=self.labels[keep],
            boxes=[self.boxes[i] for i in keep],
            masks=None if self.masks is None else [self.masks[i] for i in keep])

    def check(self, level="header", skip_bad_images=False):
        """Validates files and boxes (`checks.check_examples`); returns the
        dataset with boxes clipped and, when skipping, bad examples left
        out."""
        keep, boxes = checks.check_examples(
            self.paths, self.boxes, level=level,
            skip_bad_images=skip_bad_images, listed_in=self.source)
        checked = dataclasses.replace(self, boxes=[
            b if b is not None else self.boxes[i]
            for i, b in enumerate(boxes)])
        return checked if keep.all() else checked.subset(keep)

    def _tables(self):
        """Metadata as tensors: paths (N,), labels (N,), boxes flattened
        (sum n_i, 4) with row splits (N + 1,)."""
        if self._tensors is None:
            counts = [len(b) for b in self.boxes]
            splits = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
            flat = (np.concatenate(self.boxes) if self.boxes
                    else np.zeros((0, 4), np.float32))
            # The first call usually comes from inside a tf.data map
            # function; eager constants outlive that graph and are shared
            # by every later pipeline.
            with tf.init_scope():
                self._tensors = (
                    tf.constant(self.paths), tf.constant(self.labels),
                    tf.constant(flat.reshape(-1, 4)), tf.constant(splits))
        return self._tensors

    def example(self, index, *, seed=None, augment=False, preprocess=None,
                image_size=None, resize=None, max_boxes=None):
        """Builds example `index`: usable inside `tf.data.Dataset.map`.

        Args:
            index: scalar int tensor, position in this dataset.
            seed: (2,) int tensor, stateless seed; required with augment.
            augment: False, True (`self.augment`), or a `transforms.Augment`.
            preprocess: see `transforms.preprocess_fn`.
            image_size, resize: override the dataset's defaults.
            max_boxes: fixed box count (default `self.max_boxes`).

        Returns:
            image (H, W, 3) float32 RGB (values [0, 255] unless
            preprocessed), label () int32, boxes (max_boxes, 4) float32 in
            pixels of the returned image, -1 rows padding.
        """
        paths, labels, flat_boxes, splits = self._tables()
        size = _size_hw(image_size or self.image_size)
        # The one reader (`images.read_image`), not tf.io.decode_image:
        # TensorFlow cuts 16-bit PNGs to 8 bits, drops alpha instead of
        # compositing it and decodes JPEGs with another DCT, so the
        # datasets would see other pixels than bin/visualize.
        image = tf.numpy_function(images.read_pixels, [tf.gather(paths, index)], tf.float32,
                                  stateful=False)
        image = tf.ensure_shape(image, (None, None, 3))
        boxes = flat_boxes[splits[index]:splits[index + 1]]
        if augment:
            if seed is None:
                raise TfcafError("augment needs a seed")
            options = self.augment if augment is True else augment
            image, boxes = transforms.random_crop_flip(image, boxes, size,
                                                       options, seed)
        else:
            image, boxes = transforms.fit_image(
                image, boxes, size, resize or self.resize, self.crop_fraction)
        image = tf.ensure_shape(image, size + (3,))
        image = transforms.preprocess_fn(preprocess)(image)
        boxes = transforms.pad_boxes(boxes, max_boxes or self.max_boxes)
        return image, tf.gather(labels, index), boxes

    def from_indices(self, indices, *, batch_size=None, drop_remainder=False,
                     seed=0, augment=False, first_position=0, **example_options):
        """The one pipeline: examples at the positions `indices` yields.

        Training (`tfcaf.training.inputs`), evaluation (`evenly_spaced`),
        `pipeline` and the benchmarks all build their tf.data here.

        Args:
            indices: tf.data.Dataset of scalar int positions, or of index
                batches (b,) of one fixed size b (a sampler's batches).
            batch_size: batch size for scalar indices (None: unbatched);
                index batches keep their own size b.
            drop_remainder: drop a last incomplete batch of scalar indices.
            seed: int seed of the augmentation.
            augment, **example_options: passed to `example`.
            first_position: position in the stream of the first example.
                The example at position p is augmented with the stateless
                seed (seed, p), so a stream restarted at position p (a
                resumed training run) repeats the original one exactly.

        Returns:
            tf.data.Dataset of (images (B, H, W, 3), labels (B,), boxes
            (B, max_boxes, 4)), prefetched.

        Raises:
            TfcafError: an unknown `preprocess`, or index batches of
                unknown size without `batch_size`.
        """
        # Checked here, eagerly: raised inside the tf.data map, a TfcafError
        # would reach the caller wrapped in an autograph StagingError.
        transforms.preprocess_fn(example_options.get("preprocess"))
        if indices.element_spec.shape.rank == 1:
            batch_size = indices.element_spec.shape[0] or batch_size
            if batch_size is None:
                raise TfcafError("index batches of unknown size: pass batch_size")
            indices, drop_remainder = indices.unbatch(), True
        positions = tf.data.Dataset.counter(start=first_position)
        run_seed = tf.constant(seed, tf.int64)

        def load(index, position):
            return self.example(tf.cast(index, tf.int64), seed=tf.stack([run_seed, position]),
                                augment=augment, **example_options)

        dataset = tf.data.Dataset.zip(indices, positions).map(
            load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        if batch_size:
            dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
        return dataset.prefetch(tf.data.AUTOTUNE)

    def evenly_spaced_indices(self, count):
        """(min(count, N),) int64 positions taken every len/count-th."""
        stride = max(1, len(self) // max(count, 1))
        return np.arange(0, len(self), stride)[:count]

    def evenly_spaced(self, count, batch_size=64, **example_options):
        """Batches of `count` examples taken every len/count-th, in order,
        so a slice covers all classes of a class-sorted split (validation
        during training, `--max_images` in evaluation)."""
        indices = tf.data.Dataset.from_tensor_slices(self.evenly_spaced_indices(count))
        return self.from_indices(indices, batch_size=batch_size, **example_options)

    def gt_masks(self, indices):
        """(n, H, W) uint8 ground-truth masks of the examples at `indices`
        at `image_size`, in the pipeline's geometry (`tfcaf.data.masks`:
        1 foreground, 0 background, 255 ignored).

        Raises:
            DataError: the dataset has no masks (naming `mask_file`).
        """
        from tfcaf.data import masks
        if self.masks is None:
            where = f": {self.mask_file} does not exist" if self.mask_file else ""
            raise checks.DataError(f"{self.name}/{self.split} has no ground-truth masks{where}")
        return np.stack([masks.fitted_mask(*self.masks[i], self.paths[i], self.image_size,
                                           self.resize, self.crop_fraction)
                         for i in indices])

    def pipeline(self, batch_size=32, *, shuffle=False, seed=0,
                 augment=False, repeat=False, drop_remainder=False,
                 **example_options):
        """tf.data pipeline over the whole split.

        Args:
            batch_size: examples per batch (None or 0: unbatched).
            shuffle: reshuffle the examples every epoch (seeded).
            seed: seed of the shuffle and of the augmentation.
            augment: False, True (`self.augment`) or a `transforms.Augment`.
            repeat: repeat forever.
            drop_remainder: drop a last incomplete batch.
            **example_options: preprocess, image_size, resize, max_boxes
                (see `example`).

        Returns:
            tf.data.Dataset of (images (B, H, W, 3) float32, labels (B,)
            int32, boxes (B, max_boxes, 4) float32 with -1 padding rows).
        """
        indices = tf.data.Dataset.range(len(self))
        if shuffle:
            indices = indices.shuffle(len(self), seed=seed,
                                      reshuffle_each_iteration=True)
        if repeat:
            indices = indices.repeat()
        return self.from_indices(indices, batch_size=batch_size,
                                 drop_remainder=drop_remainder, seed=seed,
                                 augment=augment, **example_options)
