// Module entry: registers Client, Topic, Consumer and connect().
#include "addon.h"

namespace mqnode {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData(data);
  ClientWrap::Init(env, exports, *data);
  TopicWrap::Init(env, exports, *data);
  InitConsumer(env, exports, *data);
  exports.Set("maxUnacked", Napi::Number::New(env, static_cast<double>(mq::kMaxUnacked)));
  return exports;
}

}  // namespace mqnode

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return mqnode::Init(env, exports); }

NODE_API_MODULE(libmq, InitModule)
