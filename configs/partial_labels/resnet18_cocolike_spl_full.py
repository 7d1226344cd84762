# The full-label upper bound (BCE on all the labels of the same 1,500
# training images) under the name of the spl table: the run of
# ./resnet18_cocolike_pal60_full.py.
_base_ = ['./resnet18_cocolike_pal60_full.py']
