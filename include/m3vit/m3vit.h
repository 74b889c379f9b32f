/* m3vit: the C API of the M³ViT inference runtime (libm3vit, no libtorch).
 *
 *   m3vit_model* m = NULL;
 *   if (m3vit_open("model.safetensors", NULL, &m) != M3VIT_OK) { puts(m3vit_last_error()); return 1; }
 *   int task, c, h, w, classes;
 *   m3vit_task_index(m, "semseg", &task);
 *   m3vit_input_size(m, &c, &h, &w);
 *   m3vit_output_channels(m, task, &classes);
 *   ... image: c*h*w floats, normalised (m3vit_load_image makes one from a JPEG/PNG) ...
 *   m3vit_run(m, task, image, c*h*w, logits, classes*h*w);
 *   m3vit_close(m);
 *
 * Conventions (docs/LIBRARY.md):
 * - Every function that can fail returns an m3vit_status; on failure m3vit_last_error() gives one
 *   line naming the thing at fault (the file, the task, the buffer), the same text `m3vit run`
 *   prints. The text is per thread and stays until that thread's next failing call.
 * - Buffers belong to the caller: the library reads `image` and writes `logits` during the call and
 *   keeps no pointer to either. Sizes are passed in floats and checked.
 * - A model handle may be used from several threads: runs on one handle take turns (a lock inside);
 *   for runs in parallel, open one handle per thread. Queries of the model (tasks, sizes, config)
 *   never change after m3vit_open.
 * - Structs the library fills or reads start with `struct_size`, set by the caller (the *_init
 *   functions do it), so that later versions can append fields without breaking this ABI.
 */
#ifndef M3VIT_H
#define M3VIT_H

#include <stddef.h>
#include <stdint.h>

#include "m3vit/version.h"

#if defined(_WIN32)
#define M3VIT_API
#else
#define M3VIT_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum m3vit_status {
  M3VIT_OK = 0,
  M3VIT_ERROR_ARGUMENT = 1, /* a null pointer, a buffer of the wrong size, a task index out of range */
  M3VIT_ERROR_IO = 2,       /* a file missing, unreadable or unwritable */
  M3VIT_ERROR_FORMAT = 3,   /* a file whose content is malformed, or of a newer format */
  M3VIT_ERROR_CONFIG = 4,   /* an unknown task, an option the model or the CPU cannot take */
  M3VIT_ERROR_SHAPE = 5,    /* an image or tensor of the wrong size */
  M3VIT_ERROR_NUMERIC = 6,  /* NaN or Inf in the input or the output */
  M3VIT_ERROR_MEMORY = 7,   /* an allocation failed */
  M3VIT_ERROR_INTERNAL = 8  /* anything else (a bug: please report it with the message) */
} m3vit_status;

/* Where a kind of weight lives while the model runs: packed in RAM at open, or read from the file as
 * the forward pass needs it through two buffers (memory that does not grow with the experts). */
typedef enum m3vit_residency { M3VIT_RESIDENT = 0, M3VIT_STREAM = 1 } m3vit_residency;
/* bf16 needs AVX512-BF16, int8 AVX512-VNNI and the file `m3vit calibrate` writes (an int8 file runs
 * with M3VIT_INT8 only); m3vit_open refuses them otherwise (M3VIT_ERROR_CONFIG). */
typedef enum m3vit_precision { M3VIT_FP32 = 0, M3VIT_BF16 = 1, M3VIT_INT8 = 2 } m3vit_precision;

typedef struct m3vit_options {
  size_t struct_size;          /* sizeof(m3vit_options); m3vit_options_init sets it */
  m3vit_residency experts;     /* the MoE layers' experts (default resident) */
  m3vit_residency layers;      /* attention, dense MLP and head conv weights (default resident) */
  m3vit_precision precision;   /* default fp32 */
  int threads;                 /* OpenMP threads for every op; 0 = all hardware threads */
  size_t memory_budget;        /* stream modes: bytes for the weight buffers; 0 = two of the largest load */
  int direct_head_convs;       /* 1: the heads' fp32 3x3 convs direct (less memory); 0: Winograd (faster) */
} m3vit_options;

/* Wall-clock split of the last run, in milliseconds, and what streaming did. */
typedef struct m3vit_timings {
  size_t struct_size; /* sizeof(m3vit_timings), set by the caller */
  double embed_ms, attention_ms, mlp_ms, moe_ms, head_ms, total_ms;
  int experts_computed;      /* non-empty expert queues over all MoE layers */
  int64_t stream_loads;      /* weight loads through the stream buffers (0 when all resident) */
  int64_t stream_bytes_read; /* bytes those loads read from the file */
  double stream_wait_ms;     /* thread-milliseconds spent waiting for a load */
} m3vit_timings;

typedef struct m3vit_model m3vit_model; /* opaque */

/* Versions: the library's ("0.1.0"), and the newest model-export format it reads. The header's
 * M3VIT_VERSION_NUMBER is what the caller compiled against; m3vit_version_number() what it runs. */
M3VIT_API const char* m3vit_version(void);
M3VIT_API int m3vit_version_number(void);
M3VIT_API int m3vit_export_format_version(void);
/* Features of this build on this CPU, space-separated words: "fp32", "bf16" (AVX512-BF16 present),
 * "int8" (AVX512-VNNI present), "avx512"; a word for every feature the build has that the CPU can run. */
M3VIT_API const char* m3vit_features(void);

/* The calling thread's last error, one line; "" when none. */
M3VIT_API const char* m3vit_last_error(void);
/* "ok", "argument", "io", "format", "config", "shape", "numeric", "memory", "internal". */
M3VIT_API const char* m3vit_status_name(m3vit_status status);

/* Defaults: everything resident, fp32, all threads, Winograd head convs. */
M3VIT_API void m3vit_options_init(m3vit_options* options);
M3VIT_API void m3vit_timings_init(m3vit_timings* timings);

/* Opens an export written by `m3vit export` (or m3vit's training): checks every tensor, packs the
 * resident weights, plans the ops. `options` may be NULL (the defaults). On failure *model is NULL. */
M3VIT_API m3vit_status m3vit_open(const char* path, const m3vit_options* options, m3vit_model** model);
/* Frees everything the handle holds; NULL is ignored. */
M3VIT_API void m3vit_close(m3vit_model* model);

/* The model's input: channels (3), height, width. Any pointer may be NULL. */
M3VIT_API m3vit_status m3vit_input_size(const m3vit_model* model, int* channels, int* height, int* width);
M3VIT_API int m3vit_task_count(const m3vit_model* model);
/* The task's name ("semseg", "normals", ...), or NULL when `task` is out of range. Valid until close. */
M3VIT_API const char* m3vit_task_name(const m3vit_model* model, int task);
/* M3VIT_ERROR_CONFIG naming the known tasks when `name` is not one. */
M3VIT_API m3vit_status m3vit_task_index(const m3vit_model* model, const char* name, int* task);
/* Channels of the task's output: classes for semseg/human_parts, 3 for normals, 1 otherwise. */
M3VIT_API m3vit_status m3vit_output_channels(const m3vit_model* model, int task, int* channels);
/* The model's configuration as JSON (the export's "m3vit_config"). Valid until close. */
M3VIT_API const char* m3vit_config_json(const m3vit_model* model);

/* One image through the backbone with the task's routers, then that task's head.
 *   image   [channels, height, width] fp32, normalised with the ImageNet mean and std
 *   logits  [output_channels, height, width] fp32 (raw: before softmax/sigmoid/normalisation)
 * The counts are the buffers' sizes in floats and must equal those shapes. */
M3VIT_API m3vit_status m3vit_run(m3vit_model* model, int task, const float* image, size_t image_floats, float* logits,
                                 size_t logits_floats);

/* The last run on this handle: its times, and its routing (the k experts each token went to in each
 * MoE layer, descending gate probability). routing is [moe_layers, tokens, k] int32, tokens counting
 * the cls token first; m3vit_routing_shape gives the shape (0s for a model without MoE layers).
 * Before any run: M3VIT_ERROR_ARGUMENT. */
M3VIT_API m3vit_status m3vit_last_timings(const m3vit_model* model, m3vit_timings* timings);
M3VIT_API m3vit_status m3vit_routing_shape(const m3vit_model* model, int* moe_layers, int* tokens, int* k);
M3VIT_API m3vit_status m3vit_last_routing(const m3vit_model* model, int32_t* expert_ids, size_t count);

/* The task's prediction from its logits, in float (the authors' reading, utils/utils.py:60-78):
 * class ids (the first maximum) for semseg/human_parts, unit normals n / max(|n|, 1e-12) for normals,
 * probabilities sigmoid(x) for sal/edge, the value itself (metres) for depth.
 * prediction is [prediction_channels, height, width]: 3 channels for normals, 1 for the others. */
M3VIT_API m3vit_status m3vit_prediction_channels(const m3vit_model* model, int task, int* channels);
M3VIT_API m3vit_status m3vit_predict(const m3vit_model* model, int task, const float* logits, size_t logits_floats,
                                     float* prediction, size_t prediction_floats);

/* The model's input from an 8-bit RGB picture in memory, rgb [height, width, 3] row-major, made as
 * m3vit_load_image makes it from a file: scaled to [0, 1], bilinear to the model's size when `resize`
 * (else another size is M3VIT_ERROR_SHAPE), normalised with the ImageNet mean and std. */
M3VIT_API m3vit_status m3vit_image_to_input(const m3vit_model* model, const uint8_t* rgb, int height, int width,
                                            int resize, float* image, size_t image_floats);

/* Helpers that do what `m3vit run` does, for programs that start from files:
 * m3vit_load_image reads a JPEG/PNG into the model's normalised input (resize != 0 scales an image of
 * another size bilinearly; otherwise that size is M3VIT_ERROR_SHAPE); m3vit_write_picture writes the
 * task's picture of a run's logits as PNG (class colours, normals as RGB, sigmoid maps as gray),
 * through a temporary file renamed at the end. */
M3VIT_API m3vit_status m3vit_load_image(const m3vit_model* model, const char* path, int resize, float* image,
                                        size_t image_floats);
M3VIT_API m3vit_status m3vit_write_picture(const m3vit_model* model, int task, const float* logits,
                                           size_t logits_floats, const char* png_path);

#ifdef __cplusplus
}
#endif

#endif /* M3VIT_H */
