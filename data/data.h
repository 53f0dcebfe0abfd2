// The public API of the data layer (sl::data), for the trainer and the CLI.
#pragma once
#include "data/backcopy.h"
#include "data/batcher.h"
#include "data/clean.h"
#include "data/corpus_sources.h"
#include "data/hf_tokenizer.h"
#include "data/idx.h"
#include "data/manifest.h"
#include "data/prepare.h"
#include "data/synthetic.h"
#include "data/token_source.h"
#include "data/token_stream.h"
#include "data/tokenizer.h"
