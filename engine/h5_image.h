// HDF5 files built in memory and published to disk atomically. HDF5 updates a file in place, so
// a process killed mid-write can leave metadata that points at overwritten or missing bytes; a
// file held in memory (the core driver) and copied out as a whole to PATH.tmp, then renamed over
// PATH, is on disk either as the previous complete image or as the new one.
#pragma once
#include <string>

#include "engine/hdf5_handle.h"

namespace sl::h5 {

// File access for a file kept entirely in memory: H5Fopen reads it once, H5Fcreate touches
// nothing, and nothing is written back except by publish(). Same format settings as file_access.
Handle in_memory_access();

// Writes the current image of `file` to PATH.tmp and renames it over `path`. With `durable`,
// the file and its directory are fsynced too (survives power loss, not only a killed process).
// On failure PATH.tmp is removed, `path` is untouched, and sl::Error names the file and the
// cause ("disk full" when the device has no space left).
void publish(hid_t file, const std::string& path, bool durable, const std::string& where);

}  // namespace sl::h5
