"""Sinergia — an open-source Smart City Platform built on ETSI NGSI-LD and ENEA UrbanDataset."""

__version__ = "0.1.0"
