/* Embeds the m3vit runtime through its C API: open an export, run one task on a picture, write the
 * task's picture. Build against the installed package (examples/embed/CMakeLists.txt).
 *   embed_c MODEL.safetensors TASK IN.png OUT.png */
#include <m3vit/m3vit.h>

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char** argv) {
  m3vit_model* model = NULL;
  float *image = NULL, *logits = NULL;
  int task = 0, c = 0, h = 0, w = 0, classes = 0, ok = 0, no_memory = 0;
  if (argc != 5) {
    fprintf(stderr, "usage: %s MODEL.safetensors TASK IN.png OUT.png\n", argv[0]);
    return 2;
  }
  if (m3vit_open(argv[1], NULL, &model) == M3VIT_OK && m3vit_task_index(model, argv[2], &task) == M3VIT_OK &&
      m3vit_input_size(model, &c, &h, &w) == M3VIT_OK && m3vit_output_channels(model, task, &classes) == M3VIT_OK) {
    const size_t n_in = (size_t)c * h * w, n_out = (size_t)classes * h * w;
    image = malloc(n_in * sizeof(float));
    logits = malloc(n_out * sizeof(float));
    no_memory = !image || !logits;
    ok = !no_memory && m3vit_load_image(model, argv[3], 0, image, n_in) == M3VIT_OK &&
         m3vit_run(model, task, image, n_in, logits, n_out) == M3VIT_OK &&
         m3vit_write_picture(model, task, logits, n_out, argv[4]) == M3VIT_OK;
  }
  if (ok) printf("%s: %s, %d x %d x %d logits (m3vit %s)\n", argv[4], argv[2], classes, h, w, m3vit_version());
  else fprintf(stderr, "embed_c: %s\n", no_memory ? "out of memory" : m3vit_last_error());
  free(image);
  free(logits);
  m3vit_close(model);
  return ok ? 0 : 1;
}
