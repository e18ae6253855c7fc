"""Network pieces shared by the tasks: the ResNet backbones, small layers, and the Keras training step."""
