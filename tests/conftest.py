# pytest puts this folder on sys.path, so tests import the shared helpers
# (dist_utils, fake_datasets) by name.
