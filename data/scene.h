// Procedural multi-task scenes: the built-in data set of the project (no download). A small ray caster
// renders a room corner (floor, back wall, sky above the wall) with a few primitives (spheres, boxes,
// cylinders, cones) and sometimes a jointed person made of capsules, under a sun + ambient light with
// shadows, procedural textures and sensor noise. Every pixel has exact ground truth for the six tasks of
// the paper (semseg, human_parts, sal, normals, edge, depth), in the conventions of data/sample.h.
//
// Classes (task_channels("semseg", "synthetic") = 8): 0 background (sky), 1 floor, 2 wall, 3 sphere,
// 4 box, 5 cylinder, 6 person, 7 cone. Person parts as PASCAL's 6-part mapping: 1 head, 2 torso
// (with neck and shoulders), 3 upper arm, 4 lower arm (with hand), 5 upper leg, 6 lower leg (with foot).
// Saliency = the foreground objects (classes 3..7). Normals: camera frame (x right, y down, z forward,
// OpenCV's convention, in which the authors' in-plane normal rotation of data/custom_transforms.py:60-66
// is exact), unit length, zero on the sky. Depth: z-depth in metres, zero on the sky. Edge: one-pixel
// boundaries of the semantic/part map, thin(|Laplacian(L)| > 0) with L = semseg + 8 * part, the PASCAL
// rule (data/edge_maps.h).
//
// A scene is a pure function of (seed, split, index) and renders at any resolution (intrinsics scale
// with the image; the horizontal field of view is fixed per scene).
//
// This header is the whole public interface. The implementation, one job per file, in namespace
// m3vit::scene: data/scene_build.h draws the scene description (camera, room, light, objects, people)
// from a key; data/scene_render.h ray-casts it into the image and the label maps; underneath,
// data/scene_geometry.h holds the ray-shape intersections and data/scene_material.h the textures.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/mat_file.h"
#include "data/sample.h"

namespace m3vit {

constexpr int kSyntheticClasses = 8;
const std::vector<std::string>& synthetic_class_names();  // background, floor, wall, sphere, ...

struct SyntheticScene {
  Sample sample;                   // image + all six tasks
  std::vector<uint16_t> labelmap;  // [H,W] L = semseg + 8 * part: the LabelMap of the PASCAL cache
  PartsAnnotation anno;            // PASCAL-Part style struct: one object per foreground instance
};

// Renders scene `index` of `split` ("train", "val", ...) for `seed` at h x w pixels.
// `with_annotation` also fills `anno` (per-object and per-part masks) for the PASCAL cache.
SyntheticScene render_synthetic_scene(uint64_t seed, const std::string& split, uint64_t index, int h, int w,
                                      bool with_annotation = false);

// Sample id of a synthetic scene: "syn_<split>_<index, 6 digits>".
std::string synthetic_id(const std::string& split, uint64_t index);

// Every LabelMap value L = semseg + 8 * part a scene can produce except the sky (0): the normals
// valid-class list written next to a PASCAL-layout cache.
std::vector<int> synthetic_normals_valid_classes();

}  // namespace m3vit
