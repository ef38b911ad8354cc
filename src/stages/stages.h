// One entry point per pipeline stage; main() parses the Config, builds the Runtime and dispatches.
// Every run() is COLLECTIVE over rt.world_comm: all ranks call it with the same Config.
#pragma once
#include "core/config.h"
#include "dist/runtime.h"

namespace ts::stages {

namespace generate { void run(const Config& cfg, Runtime& rt); }  // thinking traces from prompts
namespace collect { void run(const Config& cfg, Runtime& rt); }   // activations at hook points -> parallel HDF5
namespace annotate { void run(const Config& cfg, Runtime& rt); }  // behaviour spans of traces -> parallel HDF5
namespace vectors { void run(const Config& cfg, Runtime& rt); }   // difference-of-means steering vectors per behaviour and layer
namespace attribute { void run(const Config& cfg, Runtime& rt); } // attribution patching per behaviour and layer, layer selection
namespace steer { void run(const Config& cfg, Runtime& rt); }      // a whole steering sweep on these ranks: plan, tasks, reduce
namespace sweep_plan { void run(const Config& cfg, Runtime& rt); } // the sweep manifest (one row per array task)
namespace sweep_run { void run(const Config& cfg, Runtime& rt); }  // one sweep task: steered generation + measurements
namespace reduce { void run(const Config& cfg, Runtime& rt); }     // a sweep's tasks -> summary.h5, summary.csv, missing list
namespace inspect { void run(const Config& cfg, Runtime& rt); }   // validate and describe a checkpoint
namespace toy_corpus { void run(const Config& cfg, Runtime& rt); }  // planted-truth toy corpus (src/toy)
namespace toy_tokenizer { void run(const Config& cfg, Runtime& rt); }  // byte-level BPE of the toy world
namespace toy_eval { void run(const Config& cfg, Runtime& rt); }  // toy model traces against the planted behaviours
namespace toy_train { void run(const Config& cfg, Runtime& rt); }  // Qwen2 model trained on the toy corpus (data parallel)

}  // namespace ts::stages
