# Builds the libmq addon from the libmq sources of this repository (no prebuilt library needed), against the local
# Node headers: `node-gyp rebuild --nodedir=/usr` (the package's install script), never a header download.
{
  "variables": {
    "libmq_dir": "../../libmq",
    "mq_cflags_cc": ["-std=c++20", "-fexceptions", "-frtti", "-Wall", "-Wextra", "-Wno-unused-parameter",
                     "-Wno-missing-field-initializers"],
  },
  "target_defaults": {
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++1y", "-std=gnu++14"],
    "cflags_cc": ["<@(mq_cflags_cc)"],
    "defines": ["_GNU_SOURCE", "BOOST_ALL_NO_LIB", "NDEBUG"],
    "include_dirs": ["<(libmq_dir)/include"],
    "cflags": ["-fPIC", "-pthread"],
  },
  "targets": [
    {
      # The one libmq file that holds the 16-byte builtin: it alone needs -mcx16 (see libmq/src/atomic16.hpp).
      "target_name": "mq_atomic16",
      "type": "static_library",
      "cflags_cc": ["-mcx16"],
      "include_dirs": ["<(libmq_dir)/src"],
      "sources": ["<(libmq_dir)/src/atomic16.cpp"],
    },
    {
      "target_name": "mq_core",
      "type": "static_library",
      "include_dirs": ["<(libmq_dir)/src"],
      "sources": ["<!@(node tools/libmq-sources.js)"],
    },
    {
      "target_name": "mq_node",
      "dependencies": [
        "mq_core",
        "mq_atomic16",
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except_all",
      ],
      "sources": ["src/addon.cc", "src/client.cc", "src/topic.cc", "src/consumer.cc", "src/futex_ring.cc", "src/util.cc"],
      "libraries": ["-pthread"],
    },
  ],
}
