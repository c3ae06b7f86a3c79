from .resnet_tsm import ResNet, ResNetTSM
