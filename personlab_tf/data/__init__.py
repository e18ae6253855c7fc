"""Data: COCO annotations -> TFRecords -> decoded samples -> augmentation -> PersonLab targets."""
