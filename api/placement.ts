/** Provider availability lives with the provider status it is read from. */
export { AGENT_PROVIDER_REASON, providerAvailability } from '../store/compute.js';
