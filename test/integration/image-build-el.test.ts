/**
 * vmstub image build of CentOS Stream 9 from the EL fixture (Debian 12's binaries as signed RPMs): the
 * root by vmstub's RPM bootstrap and the target's own dnf, run with the stub's tools on the host; its
 * system image and its ISO booted to the login prompt (test/helpers/family-image.ts). Gentoo's image
 * is in the slow tier (test/slow/image-build-gentoo.test.ts).
 */
import { describeFamilyImage, EL_IMAGE } from '../helpers/family-image.js';

describeFamilyImage(EL_IMAGE);
