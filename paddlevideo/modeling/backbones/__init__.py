from .mobilenet_v2_tsm import MobileNetV2, MobileNetV2TSM
from .resnet_tsm import ResNet, ResNetTSM
