import os

from hypothesis import settings

# CI must not flake: the default profile replays the same examples every run;
# HYPOTHESIS_PROFILE=explore searches new ones.
settings.register_profile("default", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
