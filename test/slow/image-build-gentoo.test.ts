/**
 * vmstub image build of Gentoo from its fixture (Debian 12's binaries as a signed systemd stage3, with
 * a stand-in emerge): the stage3 verified with the stub's gpg and unpacked, emerge, on the host in the
 * stub's userland; its system image and its ISO booted to the login prompt (test/helpers/family-image.ts).
 */
import { describeFamilyImage, GENTOO_IMAGE } from '../helpers/family-image.js';

describeFamilyImage(GENTOO_IMAGE);
