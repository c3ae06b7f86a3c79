from .tsn_head import TSMHead, TSNHead
