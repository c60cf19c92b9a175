"""Datasets seedzoo reads: Fashion-MNIST from Debian's files, image folders and file lists."""
