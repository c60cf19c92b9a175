"""Datasets seedzoo reads and how it augments them.

`fashion_mnist` (Debian's files), `datasets` (image folders, file lists, the keyed view dataset),
`augment` (MoCo-v2 / SwAV / SimCLR views drawn from a generator keyed on (seed, epoch, index)),
`sampler` (a distributed batch sampler that shuffles per (seed, epoch) and resumes mid-epoch).
"""
