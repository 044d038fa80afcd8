"""genoise: energy-based self-supervised learning and latent-variable world models.

Every model is a scalar energy E(x, y, z) that is low when y is compatible with x;
inference minimises it; training shapes it, contrastively or by regularisation.
See LeCun, Chopra, Hadsell, Ranzato & Huang, "A Tutorial on Energy-Based Learning" (2006).
"""

__version__ = "0.1.0"
