"""Loss functions of every scheme: pure functions of tensors, any rank, one module per family.

    common   replica_scaled (divide by the replicas in sync before taking gradients), masked means
    gan      the standard GAN losses on logits, pix2pix's (masked) L1
    vae      Sim2Real's KL (log-variance and log-sigma parameterisations), MMD, MSE, pixel-wise CE
    simgan   SimGAN's local / global adversarial losses and self-regularisation
    voxel    3D FCR-alphaGAN: voxel reconstruction, code-GAN, alphaGAN and legacy families

Each loss returns the mean over the examples of the local (per-replica) batch; every public
name is importable from `tfgan3d.losses` itself.
"""
from tfgan3d.losses.common import replica_scaled
from tfgan3d.losses.gan import gan_discriminator_loss, gan_generator_loss, masked_l1_loss
from tfgan3d.losses.simgan import (REAL_CLASS, REFINED_CLASS, SELF_REG_FEATURES,
                                   global_adversarial_discriminator_loss,
                                   global_adversarial_refiner_loss,
                                   local_adversarial_discriminator_loss,
                                   local_adversarial_refiner_loss, self_regularization_features,
                                   self_regularization_loss)
from tfgan3d.losses.vae import (kl_divergence_log_sigma, kl_divergence_log_var, mmd_rbf,
                                mmd_rbf_unbiased, mse_loss, pixelwise_cross_entropy)
from tfgan3d.losses.voxel import (GAN_LOSSES, alphagan_discriminator_loss,
                                  alphagan_generator_loss, code_discriminator_loss,
                                  code_encoder_loss, legacy_code_discriminator_loss,
                                  legacy_code_encoder_loss, legacy_discriminator_loss,
                                  legacy_generator_loss, occupancy_class_weights,
                                  voxel_reconstruction_loss)
