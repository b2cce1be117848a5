"""tfgan3d: adversarial and VAE schemes for depth, refinement and 3D voxel scenes (Keras 3)."""
from setuptools import setup

# The top-level folders trainers/, eval/ and tools/ are installed inside the package namespace
# (tfgan3d.trainers, tfgan3d.eval, tfgan3d.tools) so that no generic top-level name lands in
# site-packages.
MAPPED = {"tfgan3d.trainers": "trainers", "tfgan3d.eval": "eval", "tfgan3d.tools": "tools"}
PACKAGES = ["tfgan3d", "tfgan3d.layers", "tfgan3d.networks", "tfgan3d.models", "tfgan3d.data",
            "tfgan3d.losses", *MAPPED, "tfgan3d.eval.fcr"]

setup(
    name="tfgan3d",
    version="0.1.0",
    description=__doc__,
    python_requires=">=3.10",
    packages=PACKAGES,
    package_dir={"tfgan3d": "tfgan3d", **MAPPED},
    install_requires=[line.strip() for line in open("requirements.txt")
                      if line.strip() and not line.startswith(("#", "-"))],
    entry_points={"console_scripts": [
        "tfgan3d-train=tfgan3d.train:main",
        "tfgan3d-eval=tfgan3d.eval.__main__:main",
        "tfgan3d-render=tfgan3d.eval.render:main",
        "tfgan3d-export=tfgan3d.export:main",
        "tfgan3d-predict=tfgan3d.predict:main",
        "tfgan3d-data=tfgan3d.tools.make_dataset:main",
        "tfgan3d-bench=tfgan3d.tools.bench:main",
    ]},
)
