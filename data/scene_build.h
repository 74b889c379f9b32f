// The random scene description of one synthetic scene: camera, room, light and the objects standing on
// the floor, drawn from one key. Nothing here touches pixels: data/scene_render.h turns a Scene into the
// image and the label maps, at any resolution.
//
// World frame as in data/scene_geometry.h: metres, X right, Y up, Z away from the camera's rest
// direction; the floor is Y = 0, the back wall the plane Z = wall_z up to wall_h, the sky above it.
#pragma once

#include <cstdint>
#include <vector>

#include "data/scene_geometry.h"
#include "data/scene_material.h"

namespace m3vit::scene {

// Semantic classes (synthetic_class_names() in data/scene.h has their names).
enum SynClass { kSky = 0, kFloor = 1, kWall = 2, kSphere = 3, kBox = 4, kCylinder = 5, kPersonCls = 6, kCone = 7 };

// Fine person parts (left/right kept apart for the PASCAL-Part struct) and their 6-part ids.
constexpr int kFineParts = 10;
inline constexpr const char* kFinePartName[kFineParts + 1] = {"",      "head",  "torso", "luarm", "ruarm", "llarm",
                                                              "rlarm", "luleg", "ruleg", "llleg", "rlleg"};
inline constexpr int kCoarseOfFine[kFineParts + 1] = {0, 1, 2, 3, 3, 4, 4, 5, 5, 6, 6};

// A shape with what the labels and the image need: its class, instance and person part, and material.
struct Prim : Shape {
  int cls = kSphere;
  int inst = -1;      // foreground instance (object or person) index
  int fine_part = 0;  // person capsules only
  Material mat;
};

// A group of primitives with a bounding sphere (a person's 16 capsules are tested only if the ray
// meets the bound).
struct Group {
  V3 bc;
  float br = 0;
  std::vector<Prim> prims;
};

struct Scene {
  // camera: position and the unit axes of the camera frame (x right, y down, z forward) in world
  // coordinates; horizontal field of view in radians
  V3 cam, right, down, fwd;
  float hfov = 1.0f;
  // room
  float wall_z = 8, wall_h = 3;
  Material floor_mat, wall_mat;
  V3 sky_lo, sky_hi;  // sky colour at the horizon and looking straight up
  // light
  V3 sun;  // unit direction towards the sun
  float ambient = 0.35f;
  float noise_sigma = 2.f;  // in 8-bit levels
  std::vector<Group> groups;  // one per foreground instance that found a place: persons first, then objects
  int instances = 0;
  std::vector<int> inst_class;  // [instances] SynClass of each instance
};

// The scene for `key`: every random draw comes from Rng(key) in a fixed order (camera, room, light,
// counts, then persons and objects with their placement), plus noise-lattice keys derived from `key`.
Scene make_scene(uint64_t key);

}  // namespace m3vit::scene
