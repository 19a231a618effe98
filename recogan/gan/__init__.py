"""The GAN-augmented recommender, one job per module (lowest first):

- :mod:`~recogan.gan.config`: its settings, one dataclass per part, each default stated once;
- :mod:`~recogan.gan.networks`: the generator, discriminator and item tower (torch modules);
- :mod:`~recogan.gan.pairs`: training pairs and popularity features from a dataset;
- :mod:`~recogan.gan.train`: the training loop and early stopping; its device-resident
  epochs in :mod:`~recogan.gan._loop`;
- :mod:`~recogan.gan.model`: :class:`~recogan.gan.model.GANRecommender`, fit and the
  contract, made of the parts below;
- :mod:`~recogan.gan.ranking`: noise-draw queries, their merge, the discriminator's re-rank;
- :mod:`~recogan.gan.tail`: the audience tail, the GAN's own diversity;
- :mod:`~recogan.gan.knobs`: the early-stopping score and the knobs chosen on validation;
- :mod:`~recogan.gan.measuring`: quality of the generated vectors;
- :mod:`~recogan.gan.placing`: new and withdrawn products;
- :mod:`~recogan.gan.persistence`: what a bundle holds;
- :mod:`~recogan.gan.retrieval`: :class:`~recogan.gan.retrieval.RetrievalRecommender`, the
  model without its adversarial part (registered as ``retrieval``, the GAN's ablation).

Import the model from :mod:`recogan.gan.model` (or by name, ``recogan.registry``); this
package's ``__init__`` imports nothing, so the networks load without the model.
"""
