"""Data shared by the tasks: COCO annotations -> TFRecords -> decoded samples -> augmentation, the target grids
and keypoint disks, the tf.data stream, and the synthetic people."""
