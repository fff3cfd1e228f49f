/* Sizes in bytes, shared by the course's examples (content/shared/snippets/units.h). */
#define KiB (1ULL << 10)
#define MiB (1ULL << 20)
#define GiB (1ULL << 30)
#define TiB (1ULL << 40)
