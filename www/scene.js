// Three.js stage of the show: a meadow, a few trees and two walking characters.
// Positions are a pure function of the elapsed time, so every run of the page
// plays the same choreography.

import * as THREE from './vendor/three/three.module.js';

const SKY_COLOR = 0xbfe3f2;
const GROUND_COLOR = 0x8fc46a;

// Turn rate of a character towards its heading, in radians per second.
const TURN_RATE = 4;

// Height above a character's origin where its speech bubble is anchored, in scene units.
const BUBBLE_HEIGHT = 2.4;

/**
 * Creates the renderer, camera and scene inside `canvas`.
 * Returns `{ renderer, camera, characters, update(seconds, dt), resize() }`.
 */
export function createStage(canvas) {
  const renderer = new THREE.WebGLRenderer({ canvas, antialias: true });
  renderer.setPixelRatio(Math.min(window.devicePixelRatio, 2));
  renderer.setClearColor(SKY_COLOR);

  const scene = new THREE.Scene();
  scene.fog = new THREE.Fog(SKY_COLOR, 14, 30);

  const camera = new THREE.PerspectiveCamera(45, 1, 0.1, 60);
  camera.position.set(0, 6.5, 11);
  camera.lookAt(0, 0.8, 0);

  scene.add(new THREE.HemisphereLight(0xffffff, 0x5a7a3a, 1.6));
  const sun = new THREE.DirectionalLight(0xfff2d8, 1.8);
  sun.position.set(4, 10, 6);
  scene.add(sun);

  addMeadow(scene);

  const lily = createCharacter({
    name: 'Lily',
    body: new THREE.CapsuleGeometry(0.42, 0.7, 6, 16),
    bodyColor: 0xf28c52,
    path: (t) => ({ x: 3.2 * Math.cos(0.3 * t), z: 1.8 * Math.sin(0.3 * t) }),
  });
  const ben = createCharacter({
    name: 'Ben',
    body: new THREE.BoxGeometry(0.85, 1.3, 0.7),
    bodyColor: 0x4f7fd6,
    path: (t) => ({ x: 2.4 * Math.sin(0.22 * t + 1.2), z: 1.5 * Math.sin(0.44 * t) + 0.4 }),
  });
  lily.partner = ben;
  ben.partner = lily;
  scene.add(lily.group, ben.group);

  const characters = [lily, ben];

  function resize() {
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    renderer.setSize(width, height, false);
    camera.aspect = width / Math.max(height, 1);
    camera.updateProjectionMatrix();
  }

  function update(seconds, dt) {
    for (const character of characters) {
      character.update(seconds, dt);
    }
    renderer.render(scene, camera);
  }

  resize();
  return { renderer, camera, characters, update, resize };
}

function addMeadow(scene) {
  const ground = new THREE.Mesh(
    new THREE.CircleGeometry(18, 48),
    new THREE.MeshLambertMaterial({ color: GROUND_COLOR }),
  );
  ground.rotation.x = -Math.PI / 2;
  scene.add(ground);

  const trunkMaterial = new THREE.MeshLambertMaterial({ color: 0x8a5a35 });
  const leafMaterial = new THREE.MeshLambertMaterial({ color: 0x3f8f4a });
  const trunkGeometry = new THREE.CylinderGeometry(0.15, 0.2, 1, 8);
  const crownGeometry = new THREE.ConeGeometry(0.9, 2.2, 10);
  const treeSpots = [[-6, -4], [-4.5, -6.5], [5.5, -5], [7, -2], [-7.5, 0.5]];

  for (const [x, z] of treeSpots) {
    const trunk = new THREE.Mesh(trunkGeometry, trunkMaterial);
    trunk.position.set(x, 0.5, z);
    const crown = new THREE.Mesh(crownGeometry, leafMaterial);
    crown.position.set(x, 2.0, z);
    scene.add(trunk, crown);
  }

  const ball = new THREE.Mesh(
    new THREE.SphereGeometry(0.25, 16, 12),
    new THREE.MeshLambertMaterial({ color: 0xe84a5f }),
  );
  ball.position.set(1.2, 0.25, -2.5);
  scene.add(ball);
}

/**
 * Builds a character from a body geometry resting on the ground, a head with
 * eyes, and a blob shadow. `path(t)` gives the ground position at time t (s).
 */
function createCharacter({ name, body, bodyColor, path }) {
  const group = new THREE.Group();
  group.name = name;

  const shadow = new THREE.Mesh(
    new THREE.CircleGeometry(0.55, 24),
    new THREE.MeshBasicMaterial({ color: 0x000000, transparent: true, opacity: 0.2, depthWrite: false }),
  );
  shadow.rotation.x = -Math.PI / 2;
  shadow.position.y = 0.01;
  group.add(shadow);

  // The figure bobs while walking and the shadow stays on the ground.
  const figure = new THREE.Group();
  group.add(figure);

  body.computeBoundingBox();
  const bodyMesh = new THREE.Mesh(body, new THREE.MeshLambertMaterial({ color: bodyColor }));
  bodyMesh.position.y = -body.boundingBox.min.y;
  figure.add(bodyMesh);

  const bodyTop = body.boundingBox.max.y - body.boundingBox.min.y;
  const head = new THREE.Mesh(
    new THREE.SphereGeometry(0.36, 20, 14),
    new THREE.MeshLambertMaterial({ color: 0xffe0bd }),
  );
  head.position.y = bodyTop + 0.28;
  figure.add(head);

  const eyeGeometry = new THREE.SphereGeometry(0.06, 10, 8);
  const eyeMaterial = new THREE.MeshBasicMaterial({ color: 0x222222 });
  for (const side of [-1, 1]) {
    const eye = new THREE.Mesh(eyeGeometry, eyeMaterial);
    eye.position.set(0.13 * side, head.position.y + 0.06, 0.31);
    figure.add(eye);
  }

  const character = {
    name,
    group,
    partner: null,
    // True while the character has a bubble open. It then faces its partner and stops bobbing.
    talking: false,
    anchor: new THREE.Vector3(),
    update(t, dt) {
      const position = path(t);
      const nextPosition = path(t + 0.05);
      group.position.set(position.x, 0, position.z);

      let heading = Math.atan2(nextPosition.x - position.x, nextPosition.z - position.z);
      if (character.talking && character.partner) {
        const other = character.partner.group.position;
        heading = Math.atan2(other.x - position.x, other.z - position.z);
      }
      group.rotation.y = turnTowards(group.rotation.y, heading, TURN_RATE * dt);

      const stride = character.talking ? 0 : 1;
      figure.position.y = stride * 0.08 * Math.abs(Math.sin(t * 7));

      character.anchor.set(position.x, BUBBLE_HEIGHT, position.z);
    },
  };
  return character;
}

// Rotates angle `from` towards `to` by at most `step` radians along the shorter way.
function turnTowards(from, to, step) {
  const delta = Math.atan2(Math.sin(to - from), Math.cos(to - from));
  if (Math.abs(delta) <= step) {
    return to;
  }
  return from + Math.sign(delta) * step;
}
