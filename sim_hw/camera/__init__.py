"""Simulated cameras: what a drone's gimbal camera, or a fixed mast camera, sees of a scenario.

- `spec`: the camera (image size, lens, mode, imperfections);
- `pose`: where it is and looks, along a drone's flight or on a mast;
- `render`: the frames and their ground truth;
- the picture: a metric desert texture (`ground_texture`) drawn through the
  ground plane's homography (`geometry`); the targets at their true ground
  positions as solids of true size and heading, and raised occluders
  (`scene`); light and heat from the scenario's clock (`illumination`), the
  picture's formation (`image`) and what the atmosphere and the sensor add:
  haze, motion blur, noise, drift (`sensor`);
- `cli` and `mjpeg`: `python -m sim_hw camera`, to a video file or live as an
  MJPEG stream.
"""

from sim_hw.camera.pose import CameraPose, DronePoses, mast_pose, origin_of
from sim_hw.camera.render import (
    CameraRenderer,
    RenderedFrame,
    TargetInView,
    frame_times,
    render_drone_camera,
    render_mast_camera,
)
from sim_hw.camera.spec import MODES, CameraSpec

__all__ = [
    "MODES",
    "CameraPose",
    "CameraRenderer",
    "CameraSpec",
    "DronePoses",
    "RenderedFrame",
    "TargetInView",
    "frame_times",
    "mast_pose",
    "origin_of",
    "render_drone_camera",
    "render_mast_camera",
]
