// libFuzzer's driver, for a harness whose main is not libFuzzer's (SwiftPM names an executable's main itself).
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
