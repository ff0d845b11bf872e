"""Audio decoding and features: vocal separation, vocal segments, spoken-LID embeddings, timbral codebook."""
