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
  // libmq's error codes (mq::errc_table): the `mqCode` names lib/errors.js maps to kafkajs errors.
  const auto table = mq::errc_table();
  Napi::Array codes = Napi::Array::New(env, table.size());
  for (std::size_t i = 0; i < table.size(); ++i) {
    Napi::Object code = Napi::Object::New(env);
    code.Set("name", std::string(table[i].name));
    code.Set("text", std::string(table[i].text));
    codes.Set(static_cast<uint32_t>(i), code);
  }
  exports.Set("errorCodes", codes);
  return exports;
}

}  // namespace mqnode

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return mqnode::Init(env, exports); }

NODE_API_MODULE(libmq, InitModule)
